"""Ctrl-C / SIGTERM during training: finish the step, save a loadable checkpoint, exit cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gan.checkpoint import load_checkpoint


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_exits_cleanly(tmp_path, mnist_dir, signum):
    cmd = [
        sys.executable, "-m", "gan", "train", "--dataset", "mnist", "--data", str(mnist_dir),
        "--device", "cpu", "--batch-size", "8", "--max-steps", "100000", "--log-every", "5",
        "--checkpoint-every", "100000", "--sample-every", "100000", "--workdir", str(tmp_path),
        "--run-name", "r",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    history = tmp_path / "logs" / "r" / "history.jsonl"
    deadline = time.monotonic() + 120
    while not (history.exists() and history.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "Stopped run r at step" in out
    last = Path(tmp_path / "checkpoints" / "last.pt")
    state = load_checkpoint(last)
    assert 5 <= state["step"] < 100000
    assert (tmp_path / "checkpoints" / "r" / f"step-{state['step']:07d}.pt").is_file()
