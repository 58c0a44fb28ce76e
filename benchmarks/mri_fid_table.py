"""MRI sample quality (FID, precision, recall with random-conv features, 500 samples
against the 142 bundled slices) of candidate defaults after fixed CPU training budgets.

    uv run python benchmarks/mri_fid_table.py [--budgets 60,180] [--candidates ...]
        [--threads 1 --cores 0,1] [--json out.json]

Each row: `gan train --dataset mri --time-limit S` with the candidate's flags in a fresh
workdir (the bundled sample; the time limit is the only budget), then `gan evaluate
--num-samples 500` on its last checkpoint. The sibling of mnist_fid_table.py.
"""

from __future__ import annotations

from quality_runs import main

LR4 = ["--lr-g", "4e-4", "--lr-d", "4e-4"]
CANDIDATES = {
    "default": [],
    "mri": ["--model", "mri"],
    "mri-b16": ["--model", "mri", "--batch-size", "16"],
    "resgan": ["--model", "resgan"],
    "resgan-lr4e-4": ["--model", "resgan", *LR4],
    "resgan-b16": ["--model", "resgan", "--batch-size", "16"],
}

if __name__ == "__main__":
    main("mri", [], CANDIDATES, "60,180", "500", __doc__)
