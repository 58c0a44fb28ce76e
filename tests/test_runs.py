"""Runs that keep to themselves: per-run files, the run lock, `gan runs`, strict resume
and checkpoints that detect corruption (issue 19)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gan.training.loop
from gan.checkpoint import DIGEST, content_digest, load_checkpoint
from gan.errors import Diverged, GanError
from tests.conftest import MNIST_1K, error_lines, run_cli

TINY = ["--dataset", "mnist", "--data", str(MNIST_1K), "--model", "mlp", "--device", "cpu",
        "--batch-size", "8", "--log-every", "1", "--sample-every", "1000",
        "--no-conditional"]  # fmt: skip


def train(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    result = run_cli("train", *TINY, "--workdir", workdir, *args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return result


def runs(workdir: Path) -> dict[str, dict]:
    result = run_cli("runs", "--workdir", workdir, "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return {r["run"]: r for r in json.loads(result.stdout)}


def start(workdir: Path, name: str) -> subprocess.Popen:
    """A trainer in its own process, planned far longer than any test waits."""
    command = [sys.executable, "-m", "gan", "train", *TINY, "--workdir", str(workdir),
               "--run-name", name, "--max-steps", "1000000", "--checkpoint-every", "5",
               "--resume", "auto-or-new"]  # fmt: skip
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for_checkpoint(workdir: Path, name: str, proc: subprocess.Popen) -> None:
    first = workdir / "checkpoints" / name / "step-0000005.pt"
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.exists(), proc.stderr.read() if proc.poll() is not None else "timed out"


def test_two_runs_keep_their_own_last_eval_and_assets(tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    train(work, "--run-name", "a", "--max-steps", "4")
    train(work, "--run-name", "b", "--max-steps", "6")
    ckpts = work / "checkpoints"
    assert load_checkpoint(ckpts / "a" / "last.pt")["step"] == 4
    assert load_checkpoint(ckpts / "b" / "last.pt")["step"] == 6
    assert (ckpts / "last.pt").read_bytes() == (ckpts / "b" / "last.pt").read_bytes()

    for run in ("a", "b"):  # started from another folder: outputs still land in the run
        ckpt = ckpts / run / "last.pt"
        evaluated = run_cli("evaluate", ckpt, "--data", MNIST_1K, "--num-samples", "50",
                            "--metrics", "fid", "--device", "cpu", cwd=elsewhere)  # fmt: skip
        assert evaluated.returncode == 0, evaluated.stderr
        step = json.loads(evaluated.stdout.strip().splitlines()[-1])["step"]
        assert list((work / "logs" / run).glob(f"eval-{step:07d}-*.json"))
        sampled = run_cli("sample", ckpt, "--num", "4", "--device", "cpu", cwd=elsewhere)
        assert sampled.returncode == 0, sampled.stderr
        assert (work / "assets" / run / f"sample-{step:07d}.png").is_file()
        plotted = run_cli("plot-history", work / "logs" / run, cwd=elsewhere)
        assert plotted.returncode == 0, plotted.stderr
        assert (work / "assets" / run / "losses.png").is_file()
    assert not any(elsewhere.iterdir())
    # checkpoints/last.pt is b's now: its report goes to b, not to a file beside last.pt
    result = run_cli("evaluate", ckpts / "last.pt", "--data", MNIST_1K, "--num-samples", "50",
                     "--metrics", "fid", "--device", "cpu", cwd=elsewhere)  # fmt: skip
    assert result.returncode == 0 and not list(ckpts.glob("*.json"))
    listed = runs(work)
    assert [listed[r]["step"] for r in ("a", "b")] == [4, 6]
    assert listed["b"]["last_fid"] == pytest.approx(
        json.loads(result.stdout.strip().splitlines()[-1])["fid"]
    )


def test_a_second_trainer_is_refused_and_kill_9_frees_the_lock(tmp_path):
    killed, interrupted = start(tmp_path, "k"), start(tmp_path, "i")
    try:
        wait_for_checkpoint(tmp_path, "k", killed)
        wait_for_checkpoint(tmp_path, "i", interrupted)
        second = run_cli("train", *TINY, "--workdir", tmp_path, "--run-name", "k", "--resume",
                         "auto", "--max-steps", "50", cwd=tmp_path)  # fmt: skip
        assert second.returncode == 1 and len(error_lines(second)) == 1
        assert f"being trained by another process (pid {killed.pid}" in second.stderr
        assert {r: s["status"] for r, s in runs(tmp_path).items()} == {
            "k": "training", "i": "training"
        }  # fmt: skip
        killed.send_signal(signal.SIGKILL)
        interrupted.send_signal(signal.SIGINT)
        assert killed.wait(timeout=60) == -signal.SIGKILL
        assert interrupted.wait(timeout=60) == 0, interrupted.stderr.read()
    finally:
        for proc in (killed, interrupted):
            if proc.poll() is None:
                proc.kill()
    listed = runs(tmp_path)
    assert listed["k"]["status"] == "killed" and listed["i"]["status"] == "interrupted"
    assert listed["k"]["step"] >= 5 and listed["k"]["seconds"] > 0

    # The OS dropped the killed trainer's lock: a new one takes the run over.
    step = load_checkpoint(tmp_path / "checkpoints" / "k" / "last.pt")["step"]
    resumed = train(tmp_path, "--run-name", "k", "--resume", "auto", "--max-steps", str(step + 2))
    assert f"at step {step}" in resumed.stderr
    assert runs(tmp_path)["k"]["status"] == "finished"


def test_gan_runs_reports_a_failed_run_and_lists_columns(tmp_path, monkeypatch):
    train(tmp_path, "--run-name", "done", "--max-steps", "3")
    calls = []
    real_step = gan.training.loop.Trainer.train_step

    def failing(self):
        calls.append(self.step)
        if len(calls) == 3:  # what the NaN guard raises when the losses blow up
            raise Diverged(self.step + 1, self.step + 1)
        return real_step(self)

    monkeypatch.setattr(gan.training.loop.Trainer, "train_step", failing)
    failed = run_cli("train", *TINY, "--workdir", tmp_path, "--run-name", "bad", "--max-steps",
                     "10", cwd=tmp_path)  # fmt: skip
    assert failed.returncode == 1 and "Training diverged" in failed.stderr
    listed = runs(tmp_path)
    assert listed["done"]["status"] == "finished" and listed["done"]["planned"] == 3
    bad = listed["bad"]
    assert bad["status"] == "failed" and "diverged" in bad["reason"]
    assert bad["step"] == 2 and bad["planned"] == 10
    assert bad["dataset"] == "mnist" and bad["model"] == "mlp" and bad["size_bytes"] > 0
    status = json.loads((tmp_path / "logs" / "done" / "status.json").read_text())
    assert status["started"] == status["session_started"] <= status["ended"]
    text = run_cli("runs", "--workdir", tmp_path, cwd=tmp_path)
    assert text.returncode == 0
    header, *rows = text.stdout.splitlines()
    assert header.split()[:5] == ["RUN", "STATUS", "DATASET", "MODEL", "STEPS"]
    assert rows[0].split()[:5] == ["done", "finished", "mnist", "mlp", "3/3"]
    assert rows[1].split()[:2] == ["bad", "failed"]
    missing = run_cli("runs", "--workdir", tmp_path / "nope", cwd=tmp_path)
    assert missing.returncode == 1 and "not a folder" in missing.stderr


def _flip(blob: bytearray, at: int, count: int = 64) -> None:
    for i in range(at, at + count):
        blob[i] ^= 0xFF


def _offset(blob: bytes, tensor: torch.Tensor) -> int:
    """Where a tensor's bytes lie in the checkpoint file (torch.save stores them raw)."""
    raw = tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    at = blob.find(raw)
    assert at > 0 and blob.find(raw, at + 1) == -1
    return at


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("corrupt")
    train(work, "--run-name", "c", "--max-steps", "6", "--checkpoint-every", "3")
    return work


def _corruptions(path: Path) -> dict[str, bytes]:
    state = torch.load(path, weights_only=True)
    blob = path.read_bytes()
    targets = {
        "generator": state["runtime"]["generator"]["net.0.weight"],
        "ema": state["runtime"]["generator_ema"]["net.0.weight"],
        "discriminator": state["runtime"]["discriminator"]["net.1.weight"],
        "optimizer": state["runtime"]["opt_d"]["state"][0]["exp_avg"],
    }
    out = {}
    for name, tensor in targets.items():
        damaged = bytearray(blob)
        _flip(damaged, _offset(blob, tensor) + 128)
        out[name] = bytes(damaged)
    # metadata: a string inside the pickle, changed so that it still unpickles
    at = blob.find(b"mnist")
    assert at > 0
    out["metadata"] = blob[:at] + b"mnisu" + blob[at + 5 :]
    return out


def test_corruption_anywhere_is_refused_by_sample_and_evaluate(two_checkpoints, tmp_path):
    newest = two_checkpoints / "checkpoints" / "c" / "step-0000006.pt"
    for name, damaged in _corruptions(newest).items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(damaged)
        with pytest.raises(GanError, match="is corrupt"):
            load_checkpoint(path)
        result = run_cli("sample", path, "--device", "cpu", cwd=tmp_path)
        assert result.returncode == 1 and "is corrupt" in result.stderr, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    result = run_cli("evaluate", tmp_path / "ema.pt", "--num-samples", "50", "--device", "cpu",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "is corrupt" in result.stderr
    assert not any(p.suffix == ".png" for p in tmp_path.rglob("*"))


def test_resume_auto_skips_a_corrupt_newest_and_takes_the_previous(two_checkpoints, tmp_path):
    for name, damaged in _corruptions(
        two_checkpoints / "checkpoints" / "c" / "step-0000006.pt"
    ).items():
        work = tmp_path / name
        shutil.copytree(two_checkpoints, work)
        newest = work / "checkpoints" / "c" / "step-0000006.pt"
        newest.unlink()  # a new file: last.pt is a hard link to the intact one
        newest.write_bytes(damaged)
        result = train(work, "--run-name", "c", "--resume", "auto", "--max-steps", "7")
        assert "Skipping step-0000006.pt" in result.stderr and "is corrupt" in result.stderr
        assert "at step 3" in result.stderr, name


def test_a_checkpoint_without_a_digest_loads_with_a_note(two_checkpoints, tmp_path):
    state = torch.load(two_checkpoints / "checkpoints" / "c" / "last.pt", weights_only=True)
    assert state[DIGEST] == content_digest(state)
    del state[DIGEST]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    result = run_cli("sample", old, "--num", "4", "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no content digest" in result.stderr


def test_the_digest_covers_every_tensor_and_value():
    state = {"format_version": 1, "a": torch.arange(6.0).reshape(2, 3), "b": {"c": [1, "x"]}}
    base = content_digest(state)
    assert base.startswith("sha256:") and content_digest(dict(reversed(state.items()))) == base
    changed = {**state, "a": state["a"].clone()}
    changed["a"][1, 2] = 7.0
    assert content_digest(changed) != base
    assert content_digest({**state, "a": state["a"].to(torch.bfloat16)}) != base
    assert content_digest({**state, "a": state["a"].reshape(3, 2)}) != base
    assert content_digest({**state, "b": {"c": [1, "y"]}}) != base
    assert content_digest({**state, "b": {"c": [1, "x"]}, DIGEST: "anything"}) == base


def test_lock_file_names_its_holder(tmp_path):
    from gan.runs.folders import RunLock, RunPaths, is_locked

    paths = RunPaths(tmp_path, "r")
    with RunLock(paths):
        assert is_locked(paths.logs)
        assert (paths.logs / ".lock").read_text().split()[0] == str(os.getpid())
        with pytest.raises(GanError, match=f"pid {os.getpid()}"):
            RunLock(paths).acquire()
    assert not is_locked(paths.logs)
    RunLock(paths).acquire().release()
