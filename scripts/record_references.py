"""Record the reference runs that tests/test_reference.py replays (issue 43, point 7).

    PYTHONPATH=/path/to/gan-at-e65e87f/src uv run python scripts/record_references.py [NAME ...]

Runs `gan` (whichever `import gan` finds: point PYTHONPATH at the code to record) in
subprocesses and writes into tests/data/reference/:

- `tiny-step-0000020.pt`: a small checkpoint (fc-dcgan at 16x16, conditional, adaptive
  augmentation, learning-rate decay, EMA, FID) planned for 40 steps and stopped at 20,
  and `tiny-resumed.jsonl`: the history of its resume from 20 to 40;
- `mnist-200.jsonl`: the history of a 200-step MNIST run (the dataset's defaults on the
  1,000 digits of tests/data/mnist-1k);
- `mri-fastgan-100.jsonl`: the history of a 100-step MRI run (fastgan, the bundled sample);
- `meta.json`: the commands, the torch version and the CPU capability they ran on (the
  losses are bit-identical only on the same kind of CPU and torch build).

NAMEs (tiny, mnist-200, mri-fastgan-100) record only those; meta.json is rewritten whole.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "reference"
MNIST_1K = ROOT / "tests" / "data" / "mnist-1k"
KEYS = ("step", "epoch", "images_seen", "d_loss", "g_loss", "d_real", "d_fake", "augment_p",
        "lr_g", "lr_d", "fid", "grow_height", "grow_alpha")  # fmt: skip
CPU = ["--device", "cpu", "--precision", "fp32", "--log-every", "1"]
TINY = ["--data", str(MNIST_1K), "--model", "fc-dcgan", "--image-size", "16x16",
        "--latent-dim", "8", "--batch-size", "16", "--augment", "translation,cutout",
        "--augment-p", "auto", "--ada-ramp", "1", "--lr-decay", "0.5", "--eval-every", "10",
        "--eval-samples", "64", "--checkpoint-every", "20", "--max-steps", "40", *CPU]  # fmt: skip
RUNS = {
    "mnist-200": ["--data", str(MNIST_1K), "--max-steps", "200", *CPU],
    "mri-fastgan-100": ["--dataset", "mri", "--max-steps", "100", *CPU],
}


def gan(workdir: Path, *args: str) -> None:
    command = [sys.executable, "-m", "gan", "train", "--workdir", str(workdir), *args]
    subprocess.run(command, check=True, cwd=workdir)


def history(workdir: Path, run: str, after: int = 0) -> list[dict]:
    lines = (workdir / "logs" / run / "history.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [{k: r[k] for k in KEYS if k in r} for r in records if r["step"] > after]


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def main() -> None:
    import torch

    import gan as package

    wanted = set(sys.argv[1:]) or {"tiny", *RUNS}
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if "tiny" in wanted:
            gan(work, *TINY, "--stop-at", "20", "--run-name", "tiny")
            step_20 = work / "checkpoints" / "tiny" / "step-0000020.pt"
            shutil.copy(step_20, OUT / "tiny-step-0000020.pt")
            gan(work, "--resume", "auto", "--run-name", "tiny", *CPU)
            write_jsonl(OUT / "tiny-resumed.jsonl", history(work, "tiny", after=20))
        for name, args in RUNS.items():
            if name in wanted:
                gan(work, *args, "--run-name", name)
                write_jsonl(OUT / f"{name}.jsonl", history(work, name))
    meta = {
        "gan": str(Path(package.__file__).parent),
        "commit": os.environ.get("GAN_COMMIT"),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "tiny": [*TINY, "--stop-at", "20"],
        "tiny_resume": ["--resume", "auto", "--run-name", "tiny", *CPU],
        **RUNS,
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
