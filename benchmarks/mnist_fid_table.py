"""MNIST sample quality (FID, precision, recall with mnist-lenet) of candidate defaults
after fixed CPU training budgets on this machine.

    uv run python benchmarks/mnist_fid_table.py [--data ../shared/data] [--budgets 60,300]
        [--candidates default,mlp,...] [--threads 1 --cores 0,1] [--json out.json]

Each row: `gan train --dataset mnist --time-limit S` with the candidate's flags in a fresh
workdir (the time limit is the only budget), then `gan evaluate --num-samples 10000` on its
last checkpoint. Prints JSON lines as rows finish, then a Markdown table. The candidates
are every configuration tried for the MNIST default (docs/training.md has the results).
"""

from __future__ import annotations

import sys
from pathlib import Path

from quality_runs import main

# The global defaults the early candidates ran with, before mnist had its own (batch 128,
# learning rates 8e-4): spelled out, so that each row trains as it did in docs/training.md.
OLD = ["--batch-size", "32", "--lr-g", "2e-4", "--lr-d", "2e-4"]
LR4 = ["--lr-g", "4e-4", "--lr-d", "4e-4"]
LR8 = ["--lr-g", "8e-4", "--lr-d", "8e-4"]
CANDIDATES = {
    "default": [],  # today's mnist defaults
    "dcgan-proj": ["--model", "dcgan-proj", *OLD],
    "mlp": ["--model", "mlp", *OLD],
    "mlp-hinge": ["--model", "mlp", *OLD, "--loss", "hinge"],
    "mlp-ema0.9999": ["--model", "mlp", *OLD, "--ema-decay", "0.9999"],
    "mlp-lr4e-4": ["--model", "mlp", "--batch-size", "32", *LR4],
    "mlp-b64": ["--model", "mlp", "--batch-size", "64", "--lr-g", "2e-4", "--lr-d", "2e-4"],
    "mlp-b64-lr4e-4": ["--model", "mlp", "--batch-size", "64", *LR4],
    "mlp-b64-lr8e-4": ["--model", "mlp", "--batch-size", "64", *LR8],
    "mlp-b128-lr8e-4": ["--model", "mlp", "--batch-size", "128", *LR8],
    "mlp-b64-lr4e-4-ema0.9999": ["--model", "mlp", "--batch-size", "64", *LR4, "--ema-decay",
                                 "0.9999"],
    "mlp-b128-ttur": ["--model", "mlp", "--batch-size", "128", "--lr-g", "4e-4", "--lr-d",
                      "8e-4"],
    "mlp-b128-lr8e-4-sn": ["--model", "mlp", "--batch-size", "128", *LR8, "--spectral-norm"],
    "mlp-b128-lr8e-4-lsgan": ["--model", "mlp", "--batch-size", "128", *LR8, "--loss",
                              "lsgan"],
    "mlp-b128-lr8e-4-r1": ["--model", "mlp", "--batch-size", "128", *LR8, "--r1-gamma",
                           "0.1"],
    "mlp-b256-lr8e-4": ["--model", "mlp", "--batch-size", "256", *LR8],
    "default-decay": ["--max-steps", "24000", "--lr-decay", "0.5"],
    "default-24k": ["--max-steps", "24000"],
    "conditional-24k": ["--max-steps", "24000", "--conditional"],
    "conditional-decay": ["--max-steps", "24000", "--conditional", "--lr-decay", "0.5"],
    "conditional-decay0.25": ["--max-steps", "24000", "--conditional", "--lr-decay", "0.25"],
    "conditional-decay0.25-ema0.99": ["--max-steps", "24000", "--conditional", "--lr-decay",
                                      "0.25", "--ema-decay", "0.99"],
    "conditional-decay0.25-ttur": ["--max-steps", "24000", "--conditional", "--lr-decay",
                                   "0.25", "--lr-g", "4e-4"],
    "conditional-decay0.25-lrg2e-4": ["--max-steps", "24000", "--conditional", "--lr-decay",
                                      "0.25", "--lr-g", "2e-4"],
    "conditional-decay0.25-lrg1e-4": ["--max-steps", "24000", "--conditional", "--lr-decay",
                                      "0.25", "--lr-g", "1e-4"],
    "default-planned": ["--max-steps", "22000"],  # today's defaults, their own plan
    "default-ema0.9995": ["--max-steps", "22000", "--ema-decay", "0.9995"],
    "fc-dcgan": ["--model", "fc-dcgan", *OLD],
    "dcgan": ["--model", "dcgan", *OLD],
}  # fmt: skip

if __name__ == "__main__":
    data = str(Path("../shared/data").resolve())
    if "--data" in sys.argv:
        at = sys.argv.index("--data")
        data = sys.argv[at + 1]
        del sys.argv[at : at + 2]
    main("mnist", ["--data", data], CANDIDATES, "60,300", "10000", __doc__)
