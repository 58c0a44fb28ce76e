"""Sample quality of the training techniques after fixed CPU budgets, on MNIST and the MRI sample.

    uv run python benchmarks/techniques_table.py [--data ../shared/data] [--budgets 60,300]
        [--datasets mnist,mri] [--parallel 2] [--json out.json]

Each row is `gan train --time-limit S` in a fresh folder, then `gan evaluate` on its last
checkpoint (MNIST: mnist-lenet features, 5,000 samples; MRI: random-conv features, 500
samples against the 142 bundled slices). With --parallel N, N runs go at once, each on
cpu_count / N threads (OMP_NUM_THREADS), so every row gets the same share of the CPU.
Prints a Markdown table per dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SN = ["--loss", "hinge", "--spectral-norm"]
CONFIGS = {
    "mnist": {
        "default (dcgan-proj, ns)": [],
        "hinge + SN": SN,
        "hinge + SN + DiffAugment (p = 1)": [*SN, "--augment", "translation,cutout",
                                              "--augment-p", "1"],
        "hinge + SN + ADA (auto)": [*SN, "--augment", "translation,cutout"],
        "mlp, ns": ["--model", "mlp"],
        "mlp, hinge + SN + R1 (gamma 1)": ["--model", "mlp", *SN, "--r1-gamma", "1"],
    },
    "mri": {
        "default (mri, ns)": [],
        "hinge + SN": SN,
        "hinge + SN + R1 (gamma 1)": [*SN, "--r1-gamma", "1"],
        "hinge + SN + R1 + DiffAugment (p = 1)": [*SN, "--r1-gamma", "1", "--augment",
                                                   "color,translation,cutout", "--augment-p", "1"],
        "hinge + SN + R1 + ADA (auto)": [*SN, "--r1-gamma", "1", "--augment",
                                          "color,translation,cutout"],
    },
}  # fmt: skip
EVAL = {"mnist": ["--num-samples", "5000"], "mri": ["--num-samples", "500"]}


def gan(*args: str, cwd: Path, threads: int) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run([sys.executable, "-m", "gan", *args], cwd=cwd, capture_output=True,
                            text=True, env=env)  # fmt: skip
    if result.returncode:
        sys.exit(result.stderr)
    return result.stdout


def run_one(dataset: str, name: str, flags: list[str], budget: str, data: str, threads: int):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = ["--data", data] if dataset == "mnist" else []
        gan("train", "--dataset", dataset, *source, *flags, "--time-limit", budget,
            "--max-steps", "1000000", "--device", "cpu", "--run-name", "r", "--log-every", "20",
            "--checkpoint-every", "1000000", "--sample-every", "1000000", cwd=work,
            threads=threads)  # fmt: skip
        history = [json.loads(x) for x in (work / "logs/r/history.jsonl").open()]
        out = gan("evaluate", "checkpoints/last.pt", *EVAL[dataset], "--device", "cpu",
                  cwd=work, threads=threads)  # fmt: skip
        result = json.loads(out.strip().splitlines()[-1])
        return {"dataset": dataset, "config": name, "seconds": int(budget),
                "steps": history[-1]["step"], "augment_p": history[-1].get("augment_p"),
                **result}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path("../shared/data").resolve()))
    parser.add_argument("--budgets", default="60,300")
    parser.add_argument("--datasets", default="mnist,mri")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    threads = max(1, (os.cpu_count() or 1) // args.parallel)
    jobs = [(d, n, f, b, args.data, threads) for d in args.datasets.split(",")
            for b in args.budgets.split(",") for n, f in CONFIGS[d].items()]  # fmt: skip
    with ThreadPoolExecutor(args.parallel) as pool:
        rows = []
        for row in pool.map(lambda job: run_one(*job), jobs):
            rows.append(row)
            print(json.dumps(row), flush=True)
    for dataset in args.datasets.split(","):
        print(f"\n{dataset}: | configuration | training time | steps | FID | precision | recall |"
              "\n|---|---|---|---|---|---|")  # fmt: skip
        for r in (r for r in rows if r["dataset"] == dataset):
            print(f"| {r['config']} | {r['seconds']} s | {r['steps']} | {r['fid']:.2f} | "
                  f"{r['precision']:.2f} | {r['recall']:.2f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
