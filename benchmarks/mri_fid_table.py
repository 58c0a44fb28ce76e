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

# Spelled out as each row of docs/training.md ran: `--augment none` where the run had no
# augmentation (before fewer than 2,000 images got it by default).
LR4 = ["--lr-g", "4e-4", "--lr-d", "4e-4"]
NONE = ["--augment", "none"]
FASTGAN = ["--model", "fastgan", "--max-steps", "1540"]
CANDIDATES = {
    "default": [],  # today's mri defaults: batch 16, adaptive augmentation
    "mri-b32": ["--model", "mri", "--batch-size", "32", *NONE],
    "mri-b16": ["--model", "mri", "--batch-size", "16", *NONE],
    "mri-b16-ada": ["--model", "mri", "--batch-size", "16"],
    "mri-b16-lr4e-4": ["--model", "mri", "--batch-size", "16", *LR4, *NONE],
    "resgan": ["--model", "resgan", "--batch-size", "32", *NONE],
    "resgan-lr4e-4": ["--model", "resgan", "--batch-size", "32", *LR4, *NONE],
    # Planned lengths (the default's 844 steps): --lr-decay follows the plan, so these
    # are screened at equal steps rather than equal time.
    "default-844": ["--max-steps", "844"],
    "decay-844": ["--max-steps", "844", "--lr-decay", "0.5"],
    # fastgan plans the steps it makes in 180 s on 2 cores (0.117 s a step), so that the
    # adaptive augmentation's ramp is that of a default run of its own.
    "fastgan": FASTGAN,
    "fastgan-ttur": [*FASTGAN, "--lr-d", "8e-4"],
    "fastgan-hinge-sn": [*FASTGAN, "--loss", "hinge", "--spectral-norm"],
}

if __name__ == "__main__":
    main("mri", [], CANDIDATES, "60,180", "500", __doc__)
