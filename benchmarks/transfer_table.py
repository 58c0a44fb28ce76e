"""Transfer on small data (docs/training.md, Small data): MNIST digits 5-9 from 200 images,
trained from scratch or fine-tuned from a run on digits 0-4 (with and without FreezeD), at
equal steps, two seeds each, scored against every 5-9 digit of the split.

    uv run python benchmarks/transfer_table.py pretrain [--data ../shared/data/MNIST/raw]
    uv run python benchmarks/transfer_table.py runs [--steps 150] [--parallel] [--seeds 1,2]
    uv run python benchmarks/transfer_table.py score [--samples 5000] [--metrics fid,pr,dc]

`pretrain`: `gan train` on digits 0-4 with the MNIST defaults (5-minute budget). `runs`:
the rows, each `gan train --classes 5,6,7,8,9 --limit 200 --max-steps N` in the same
workdir (nice -n 5; --parallel: all at once, each logging to <workdir>/<run>.log).
`score`: each run's last checkpoint, --samples samples (10,000), mnist-lenet
features, against every 5-9 image (FID, precision/recall; add dc for density/coverage
where gan has it), and the copy check (nn) against the 200 training images; a Markdown
table, mean and spread (half the range) over the seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from gan.config import DataConfig
from gan.data import load_dataset
from gan.metrics.evaluate import Evaluator
from gan.outputs.generator import generator_from_checkpoint

NEW = ("5", "6", "7", "8", "9")
ROWS = {
    "scratch": [],
    "fine-tune": ["--init-from", "{pretrain}"],
    "fine-tune --freeze-d 1": ["--init-from", "{pretrain}", "--freeze-d", "1"],
}
GAN = [sys.executable, "-m", "gan"]


def _train(args: argparse.Namespace, *flags: str, wait: bool = True) -> subprocess.Popen:
    command = ["nice", "-n", "5", *GAN, "train", "--dataset", "mnist", "--data", args.data]
    command += ["--workdir", args.workdir, *flags]
    print(" ".join(command[3:]), flush=True)
    log = open(Path(args.workdir) / f"{flags[flags.index('--run-name') + 1]}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    if wait and process.wait() != 0:
        raise SystemExit(f"{command} failed")
    return process


def pretrain(args: argparse.Namespace) -> None:
    _train(args, "--classes", "0,1,2,3,4", "--run-name", "pretrain-0-4")


def runs(args: argparse.Namespace) -> None:
    source = args.pretrain or str(Path(args.workdir) / "checkpoints/pretrain-0-4/last.pt")
    started: list[subprocess.Popen] = []
    for seed in args.seeds.split(","):
        for row, extra in ROWS.items():
            if args.rows and row.split()[0] not in args.rows.split(","):
                continue
            name = f"{row.split()[0]}{'-freeze' if 'freeze' in row else ''}-s{seed}"
            flags = [f.format(pretrain=source) for f in extra]
            size = ["--limit", str(args.images), "--max-steps", str(args.steps)]
            started.append(_train(args, "--classes", ",".join(NEW), *size, "--seed", seed,
                                  "--run-name", name, *flags, wait=not args.parallel))  # fmt: skip
    if any(process.wait() != 0 for process in started):
        raise SystemExit("a run failed: see its log in the workdir")


def score(args: argparse.Namespace) -> None:
    device = torch.device("cpu")
    every = load_dataset(DataConfig(name="mnist", source=args.data, classes=NEW)).images
    seen = load_dataset(
        DataConfig(name="mnist", source=args.data, classes=NEW, limit=args.images)
    ).images
    metrics = tuple(args.metrics.split(","))
    against_all = Evaluator(every, "mnist-lenet", None, args.samples, device)
    against_seen = Evaluator(seen, "mnist-lenet", None, args.samples, device)
    table: dict[str, list[dict]] = {}
    for row in ROWS:
        for seed in args.seeds.split(","):
            name = f"{row.split()[0]}{'-freeze' if 'freeze' in row else ''}-s{seed}"
            path = Path(args.workdir) / "checkpoints" / name / "last.pt"
            generator, state = generator_from_checkpoint(path, device)
            result = against_all(generator, metrics)
            result |= {k: v for k, v in against_seen(generator, ("nn",)).items()}
            result |= {"run": name, "step": int(state["step"]), "seed": int(seed)}
            print(json.dumps(result), flush=True)
            table.setdefault(row, []).append(result)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))
    keys = [k for k in ("fid", "precision", "recall", "density", "coverage") if k in result]
    keys += [k for k in result if k.startswith("nn_") or k == "copies"][:2]
    print("| row | step | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for row, results in table.items():
        cells = []
        for key in keys:
            values = [r[key] for r in results if isinstance(r.get(key), int | float)]
            if not values:
                cells.append("-")
                continue
            mean, half = statistics.mean(values), (max(values) - min(values)) / 2
            cells.append(f"{mean:.3g} ± {half:.2g}")
        print(f"| {row} | {results[0]['step']} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("pretrain", "runs", "score"))
    parser.add_argument("--data", default="../shared/data/MNIST/raw")
    parser.add_argument("--workdir", default="transfer-exp")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--metrics", default="fid,pr")
    parser.add_argument("--pretrain", help="runs: the checkpoint to fine-tune from")
    parser.add_argument("--parallel", action="store_true", help="runs: all rows at once")
    parser.add_argument("--rows", help="runs: only these rows (scratch, fine-tune)")
    parser.add_argument("--json")
    args = parser.parse_args()
    {"pretrain": pretrain, "runs": runs, "score": score}[args.stage](args)


if __name__ == "__main__":
    main()
