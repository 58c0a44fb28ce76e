"""`gan train --dry-run`: the resolved plan, printed in well under 2 s on each dataset's
defaults (no torch, no data read), and no file created; with --resume, what it changes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import MNIST_1K, run_cli

# The dry run in a fresh interpreter, then what it imported: the plan needs no torch.
PROBE = (
    "import sys\n"
    "from gan.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as exit:\n"
    "    assert not exit.code, exit.code\n"
    "print('torch loaded' if 'torch' in sys.modules else 'no torch')\n"
)


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("dataset", ["mnist", "mri", "folder", "bps"])
def test_each_datasets_defaults_print_their_plan_quickly_and_write_nothing(tmp_path, dataset):
    began = time.perf_counter()
    args = [sys.executable, "-c", PROBE, "train", "--dataset", dataset, "--dry-run"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - began
    assert done.returncode == 0, done.stderr
    assert "Plan of a new run" in done.stdout and "Schedule:" in done.stdout
    assert done.stdout.rstrip().endswith("no torch")
    assert seconds < 2.0, seconds
    assert _files(tmp_path) == []  # no checkpoints/, logs/, assets/, data/


def test_the_plan_shows_the_options_the_schedule_and_the_model(tmp_path):
    done = run_cli("train", "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "--time-budget 5m" in out and "dataset default" in out
    assert "fitted to --time-budget 5m by a warm-up" in out  # its length comes later
    assert "G 1,545,872 parameters, D 536,065" in out
    given = ["--max-steps", "1000", "--augment", "translation", "--dry-run"]
    steps = run_cli("train", *given, cwd=tmp_path)
    out = steps.stdout
    assert "--max-steps 1000" in out and "flag" in out
    assert "1,000 steps of 128 images" in out
    assert "constant to step 750, then linearly down to 0 at step 1,000" in out  # 25%
    assert "p may go from 0 to 1 in 25,600 images (200 steps)" in out  # --ada-ramp 0.2
    assert "every 100 steps" in out and "every 2,000 steps" in out  # grids, checkpoints
    assert _files(tmp_path) == []


def test_a_resume_dry_run_says_what_the_resume_changes_and_touches_nothing(tmp_path):
    common = ["--data", MNIST_1K, "--device", "cpu", "--batch-size", "8", "--run-name", "r"]
    done = run_cli("train", *common, "--max-steps", "4", "--lr-decay", "0.5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    shown = run_cli("train", "--resume", "auto", "--max-steps", "8", "--dry-run", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "Plan of resuming checkpoints/r/step-0000004.pt at step 4 as run 'r'" in out
    assert "--max-steps 8 (was --max-steps 4)" in out
    assert "8 steps of 8 images (0.1 epochs), from step 4" in out
    assert "The plan is now 8 steps (was 4)" in out
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
