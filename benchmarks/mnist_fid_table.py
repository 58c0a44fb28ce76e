"""FID (mnist-lenet) of each MNIST model after fixed training-time budgets on this machine.

    uv run python benchmarks/mnist_fid_table.py [--data ../shared/data] [--budgets 60,300]

For each model and budget: `gan train --time-limit S` in a fresh workdir, then
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path("../shared/data").resolve()))
    parser.add_argument("--budgets", default="60,300")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for model in args.models.split(","):
        for budget in args.budgets.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                gan("train", "--dataset", "mnist", "--data", args.data, "--model", model,
                    "--time-limit", budget, "--max-steps", "1000000", "--device", "cpu",
                    "--run-name", "r", "--log-every", "100", "--checkpoint-every", "1000000",
                    "--sample-every", "1000000", cwd=work)  # fmt: skip
                history = [json.loads(x) for x in (work / "logs/r/history.jsonl").open()]
                out = gan("evaluate", "checkpoints/last.pt", "--num-samples", "10000",
                          "--device", "cpu", cwd=work)  # fmt: skip
                result = json.loads(out.strip().splitlines()[-1])
                row = {"model": model, "seconds": int(budget), "steps": result["step"],
                       "images_per_s": round(history[-1]["images_per_s"]), **result}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| model | training time | steps | FID (mnist-lenet) | precision | recall |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['model']}` | {r['seconds']} s | {r['steps']} | {r['fid']:.1f} | "
              f"{r['precision']:.2f} | {r['recall']:.2f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
