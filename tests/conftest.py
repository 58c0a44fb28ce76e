"""Shared fixtures: the bundled 1,000-digit MNIST slice, ../shared/data, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST_1K = ROOT / "tests" / "data" / "mnist-1k"
SHARED_DATA = ROOT.parent / "shared" / "data"
SHARED_MNIST = SHARED_DATA / "MNIST" / "raw"
SHARED_MRI = SHARED_DATA / "mri" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"

needs_shared = pytest.mark.skipif(
    not (SHARED_MNIST.is_dir() and SHARED_MRI.is_file()),
    reason="../shared/data (full MNIST test split, MNI T1 volume) is not beside this clone",
)


@pytest.fixture
def mnist_dir() -> Path:
    return MNIST_1K


def run_gan(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (python -m gan), as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gan", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
