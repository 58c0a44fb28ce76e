"""Ctrl-C / SIGTERM during training: finish the step, save a loadable checkpoint, exit cleanly;
a second Ctrl-C abandons the step at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
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


class Lines:
    """A process's stderr read line by line in a thread, to wait for what it logs."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.thread.start()

    def wait_for(self, phrase: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(phrase in line for line in list(self.lines)):
                return True
            time.sleep(0.01)
        return False

    @property
    def text(self) -> str:
        return "".join(self.lines)


def test_a_second_ctrl_c_aborts_the_step_at_once(tmp_path, mnist_dir):
    """First Ctrl-C: "finishing this step"; a second while that step runs: the step is
    abandoned, the process exits 130 within seconds, status.json says interrupted, and
    the checkpoint saved before stays the newest and loads."""
    cmd = [
        sys.executable, "-m", "gan", "train", "--dataset", "mnist", "--data", str(mnist_dir),
        "--device", "cpu", "--batch-size", "64", "--accumulation-steps", "8",  # ~1 s steps
        "--max-steps", "1000", "--log-every", "1", "--checkpoint-every", "1",
        "--sample-every", "100000", "--workdir", str(tmp_path), "--run-name", "r",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    err = Lines(proc.stderr)
    try:
        # logged once step 1's checkpoint is complete: step 2 begins
        assert err.wait_for("Saved checkpoint", timeout=120), err.text
        proc.send_signal(signal.SIGINT)
        assert err.wait_for("finishing this step", timeout=30), err.text
        proc.send_signal(signal.SIGINT)
        aborted = time.monotonic()
        proc.wait(timeout=60)
        seconds = time.monotonic() - aborted
    finally:
        if proc.poll() is None:
            proc.kill()
        err.thread.join(timeout=10)
    out = proc.stdout.read()
    assert proc.returncode == 130, err.text
    assert seconds < 10, seconds
    text = err.text
    assert "Interrupted." in text and "Traceback" not in text and "KeyboardInterrupt" not in text
    assert text.count("SIGINT received: finishing this step") == 1
    assert text.count("Saved checkpoint") == 1  # step 1's, and nothing after
    assert "Stopped run" not in out and "Finished run" not in out

    status = json.loads((tmp_path / "logs" / "r" / "status.json").read_text())
    assert status["status"] == "interrupted" and status["reason"] == "KeyboardInterrupt"
    assert status["step"] == 1  # step 2 was abandoned, not finished
    history = [json.loads(line) for line in (tmp_path / "logs" / "r" / "history.jsonl").open()]
    assert [r["step"] for r in history] == [1]
    folder = tmp_path / "checkpoints" / "r"
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt", "step-0000001.pt"]
    for path in (folder / "step-0000001.pt", folder / "last.pt", tmp_path / "checkpoints/last.pt"):
        assert load_checkpoint(path)["step"] == 1  # complete: its digest checks out
    from gan.runs.overview import list_runs

    (run,) = list_runs(tmp_path)
    assert run.status == "interrupted"  # not "training": the lock was let go
