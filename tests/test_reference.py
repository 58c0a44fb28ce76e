"""Behaviour unchanged where nothing was wrong (issue 43, point 7): runs give the losses that
e65e87f's code recorded in tests/data/reference (scripts/record_references.py), bit for bit,
and a checkpoint it wrote resumes bit-identically.

CPU kernels differ between kinds of CPU (AVX2, AVX-512, AMX) and torch builds, so the
comparisons hold only where the recording's torch version and CPU capability are this
machine's; elsewhere they skip, saying why. To keep the suite quick, the MNIST and MRI runs
train the first steps of their recorded plan (`--stop-at` keeps the planned length, so
those steps are the recorded run's); GAN_REFERENCE_FULL=1 trains them whole (200 and 100
steps: minutes on 2 cores)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import MNIST_1K, ROOT, run_cli

REFERENCE = ROOT / "tests" / "data" / "reference"
META = json.loads((REFERENCE / "meta.json").read_text())
FULL = os.environ.get("GAN_REFERENCE_FULL") == "1"
HERE = (torch.__version__, torch.backends.cpu.get_cpu_capability())
RECORDED = (META["torch"], META["cpu_capability"])

same_machine_kind = pytest.mark.skipif(
    HERE != RECORDED,
    reason=f"the reference losses were recorded with torch {RECORDED[0]} on a {RECORDED[1]} "
    f"CPU and this is torch {HERE[0]} on {HERE[1]}: CPU kernels differ, so bit-identical "
    "losses can only be compared on the same kind of CPU and torch build",
)
CPU = ["--device", "cpu", "--precision", "fp32", "--log-every", "1"]


def _recorded(name: str) -> list[dict]:
    lines = (REFERENCE / f"{name}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _history(workdir: Path, run: str) -> list[dict]:
    lines = (workdir / "logs" / run / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _train(workdir: Path, *args: str) -> None:
    result = run_cli("train", "--workdir", workdir, *args, cwd=workdir)
    assert result.returncode == 0, result.stderr


def _assert_same(found: list[dict], recorded: list[dict]) -> None:
    assert [r["step"] for r in found] == [r["step"] for r in recorded]
    for mine, theirs in zip(found, recorded, strict=True):
        for key, value in theirs.items():  # ==, not approx: bit-identical
            assert mine.get(key) == value, (mine["step"], key, mine.get(key), value)


@same_machine_kind
@pytest.mark.parametrize(
    ("name", "args", "first"),
    [
        ("mnist-200", ["--data", str(MNIST_1K), "--max-steps", "200"], 40),
        ("mri-fastgan-100", ["--dataset", "mri", "--max-steps", "100"], 4),
    ],
)
def test_a_run_gives_the_losses_recorded_before(tmp_path, name, args, first):
    recorded = _recorded(name)
    stop = [] if FULL else ["--stop-at", str(first)]
    _train(tmp_path, *args, *CPU, *stop, "--run-name", "r")
    _assert_same(_history(tmp_path, "r"), recorded if FULL else recorded[:first])


@same_machine_kind
def test_a_checkpoint_written_by_e65e87f_resumes_bit_identically(tmp_path):
    """Its flat state migrates to the components' namespaces, and the resumed run logs the
    losses, augmentation strength, learning rates and FIDs of e65e87f's own resume."""
    copy = tmp_path / "old" / "tiny-step-0000020.pt"
    copy.parent.mkdir()
    shutil.copy(REFERENCE / "tiny-step-0000020.pt", copy)
    _train(tmp_path, "--resume", str(copy), "--run-name", "t", "--data", str(MNIST_1K), *CPU)
    _assert_same(_history(tmp_path, "t"), _recorded("tiny-resumed"))
