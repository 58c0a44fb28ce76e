"""FID (mnist-lenet) of each MNIST model after fixed training-time budgets on this machine.

    uv run python benchmarks/mnist_fid_table.py [--data ../shared/data] [--budgets 60,300]
        [--precisions fp32,bf16]

For each model, precision and budget: `gan train --time-limit S` in a fresh workdir, then
`gan evaluate --num-samples 10000` on the last checkpoint. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

MODELS = ("mlp", "dcgan", "dcgan-proj", "fc-dcgan")


def gan(*args: str, cwd: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "gan", *args], cwd=cwd, capture_output=True,
                            text=True)  # fmt: skip
    if result.returncode:
        sys.exit(result.stderr)
    return result.stdout


def run_one(data: str, model: str, precision: str, budget: str) -> dict:
    """Train for `budget` seconds in a fresh folder, then score 10,000 samples."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gan("train", "--dataset", "mnist", "--data", data, "--model", model, "--time-limit",
            budget, "--precision", precision, "--max-steps", "1000000", "--device", "cpu",
            "--run-name", "r", "--log-every", "100", "--checkpoint-every", "1000000",
            "--sample-every", "1000000", cwd=work)  # fmt: skip
        history = [json.loads(x) for x in (work / "logs/r/history.jsonl").open()]
        run = json.loads((work / "logs/r/run.json").read_text())
        out = gan("evaluate", "checkpoints/last.pt", "--num-samples", "10000", "--device", "cpu",
                  cwd=work)  # fmt: skip
        result = json.loads(out.strip().splitlines()[-1])
        return {"model": model, "arithmetic": run["speed"]["precision"], "seconds": int(budget),
                "steps": result["step"], "images_per_s": round(history[-1]["images_per_s"]),
                **result}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path("../shared/data").resolve()))
    parser.add_argument("--budgets", default="60,300")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--precisions", default="auto", help="e.g. fp32,bf16 (auto: the CPU's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    jobs = [(m, p, b) for m in args.models.split(",") for p in args.precisions.split(",")
            for b in args.budgets.split(",")]  # fmt: skip
    for model, precision, budget in jobs:
        row = run_one(args.data, model, precision, budget)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| model | arithmetic | training time | steps | FID (mnist-lenet) | precision | "
          "recall |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        print(f"| `{r['model']}` | {r['arithmetic']} | {r['seconds']} s | {r['steps']} | "
              f"{r['fid']:.1f} | {r['precision']:.2f} | {r['recall']:.2f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
