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
# The global loss; mri's defaults before 2026-12-02 (the seed's pair with it); today's.
NS = ["--loss", "ns", "--no-spectral-norm"]
OLD = ["--model", "mri", *NS]
HSN = ["--loss", "hinge", "--spectral-norm"]
CANDIDATES = {
    "default": [],  # today's: fastgan, hinge, spectral norm, batch 16, 146 epochs, ADA
    "old-default": [*OLD, "--epochs", "95"],
    "mri-b32": [*OLD, "--batch-size", "32", *NONE],
    "mri-b16": [*OLD, "--batch-size", "16", *NONE],
    "mri-b16-ada": [*OLD, "--batch-size", "16"],
    "mri-b16-lr4e-4": [*OLD, "--batch-size", "16", *LR4, *NONE],
    "resgan": ["--model", "resgan", *NS, "--batch-size", "32", *NONE],
    "resgan-lr4e-4": ["--model", "resgan", *NS, "--batch-size", "32", *LR4, *NONE],
    # Planned lengths (the default's 844 steps): --lr-decay follows the plan, so these
    # are screened at equal steps rather than equal time.
    "default-844": [*OLD, "--max-steps", "844"],
    "decay-844": [*OLD, "--max-steps", "844", "--lr-decay", "0.5"],
    # fastgan plans the steps it makes in 180 s on 2 cores (0.117 s a step), so that the
    # adaptive augmentation's ramp is that of a default run of its own.
    "fastgan": [*FASTGAN, *NS],
    "fastgan-ttur": [*FASTGAN, *NS, "--lr-d", "8e-4"],
    "fastgan-hinge-sn": [*FASTGAN, *HSN],
    # A latent of 8 rather than 100: the 142 slices vary along one axis (2026-12-02).
    "old-default-latent8": [*OLD, "--latent-dim", "8"],
    "fastgan-hinge-sn-latent8": [*FASTGAN, *HSN, "--latent-dim", "8"],
    # Coarse-to-fine (--grow, 2026-12-04): the default's plan of 146 epochs, stopped at the
    # budget like the default; from 1/8 of the size, half the plan in the coarse stages.
    "default-146": ["--epochs", "146"],
    "grow": ["--grow", "--epochs", "146"],
    # The coarse stages' steps are cheap: a longer plan that the budget still finishes.
    "grow-200": ["--grow", "--epochs", "200"],
    "grow-share0.7": ["--grow", "--grow-share", "0.7", "--epochs", "200"],
    # Most of the plan coarse (the metric reference: quarter-size blends, upsampled, score
    # precision 1.00), the full size faded in at the end.
    "grow4-0.9": ["--grow", "--grow-from", "4", "--grow-share", "0.9", "--epochs", "200"],
    "grow8-0.9": ["--grow", "--grow-share", "0.9", "--epochs", "200"],
    # A short coarse start from 1/4 (one convolution block), most of the plan at full size.
    "grow4-0.3": ["--grow", "--grow-from", "4", "--grow-share", "0.3", "--epochs", "146"],
    # R3GAN's loss (relativistic pairing, R1 + R2 at --r1-gamma, no normalisation).
    "rpgan-g1": ["--epochs", "146", "--loss", "rpgan", "--r1-gamma", "1", "--no-spectral-norm"],
    "rpgan-g10": ["--epochs", "146", "--loss", "rpgan", "--r1-gamma", "10", "--no-spectral-norm"],
}

if __name__ == "__main__":
    main("mri", [], CANDIDATES, "60,180", "500", __doc__)
