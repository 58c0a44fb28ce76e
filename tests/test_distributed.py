"""torchrun + DDP on the CPU with gloo and 2 real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from gan import distributed
from gan.checkpoint import load_checkpoint
from tests.conftest import MNIST_1K, ROOT, run_gan
from tests.ddp_worker import build

WORKER = ROOT / "tests" / "ddp_worker.py"


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           *args]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_two_processes_write_outputs_once(tmp_path):
    result = run_gan(
        "train", "--data", str(MNIST_1K), "--device", "cpu", "--nproc", "2", "--batch-size", "8",
        "--max-steps", "6", "--log-every", "2", "--checkpoint-every", "3", "--sample-every", "3",
        "--workdir", str(tmp_path), "--run-name", "ddp", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.count("Finished run ddp at step 6") == 1  # rank 0 reports
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert [f for f in files if "tfevents" in f].__len__() == 1
    assert [f for f in files if not f.startswith("logs/ddp/events")] == [
        "assets/ddp/reals.png", "assets/ddp/samples-0000003.png", "assets/ddp/samples-0000006.png",
        "checkpoints/ddp/last.pt", "checkpoints/ddp/step-0000003.pt",
        "checkpoints/ddp/step-0000006.pt", "checkpoints/last.pt", "logs/ddp/.lock",
        "logs/ddp/config.toml", "logs/ddp/history.jsonl", "logs/ddp/run.json",
        "logs/ddp/status.json", "logs/ddp/train.log",
    ]  # fmt: skip
    run = json.loads((tmp_path / "logs" / "ddp" / "run.json").read_text())
    assert run["world_size"] == 2 and run["global_batch"] == 16
    history = [json.loads(line) for line in (tmp_path / "logs/ddp/history.jsonl").open()]
    assert [r["step"] for r in history] == [2, 4, 6]
    assert history[-1]["images_seen"] == 6 * 16  # the global stream: 16 images per step
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["loop"]["world_size"] == 2 and len(state["loop"]["rng_ranks"]) == 2


def test_parameters_identical_on_both_ranks_after_one_step(tmp_path):
    result = torchrun(str(WORKER), "real", str(tmp_path))
    assert result.returncode == 0, result.stderr
    a = torch.load(tmp_path / "g-step1-rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "g-step1-rank1.pt", weights_only=True)
    for name, tensor in a.items():
        if tensor.is_floating_point() and "running" not in name:  # BN statistics are per rank
            assert torch.equal(tensor, b[name]), name


def test_parameters_stay_identical_on_both_ranks_through_r1_steps(tmp_path):
    """R1 through autograd.grad(create_graph=True), then D's one backward, under DDP; with
    spectral norm and adaptive augmentation (its signal all-reduced)."""
    result = torchrun(str(WORKER), "r1", str(tmp_path))
    assert result.returncode == 0, result.stderr
    a, b = (torch.load(tmp_path / f"final-rank{r}.pt", weights_only=True) for r in (0, 1))
    for net in ("g", "d"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), (net, name)
    assert torch.equal(a["augment_p"], b["augment_p"])
    assert a["losses"] == b["losses"]


def test_two_ranks_of_b_match_one_rank_of_2b(tmp_path):
    """Same images, same latents (one shared stream sliced per rank), gradients averaged by
    DDP: only the order of floating-point sums differs, so losses agree to ~1e-6."""
    result = torchrun(str(WORKER), "tiny", str(tmp_path))
    assert result.returncode == 0, result.stderr
    ranks = [torch.load(tmp_path / f"final-rank{r}.pt", weights_only=True) for r in (0, 1)]

    single = build("tiny", distributed.DistInfo(), batch=16, steps=5)
    losses = [[float(s.d_loss), float(s.g_loss)] for s in (single.train_step() for _ in range(5))]
    for rank in ranks:
        flat = [v for step in rank["losses"] for v in step]
        assert flat == pytest.approx([v for step in losses for v in step], rel=1e-5, abs=1e-6)
        for name, tensor in single.parts.runtime.G.state_dict().items():
            torch.testing.assert_close(rank["g"][name], tensor, rtol=1e-4, atol=1e-6)


def _fields(text: str) -> dict[str, str]:
    return {m[1]: m[2].strip() for m in re.finditer(r"^\s+(\w+)\s+: (.*)$", text, re.M)}


def _failure_report(stderr: str) -> dict[str, dict[str, str]]:
    """torchrun's report: the fields of its first failure ("root") and of the other one."""
    others, root = stderr[stderr.index("Failures:") :].split("Root Cause (first observed failure):")
    return {"root": _fields(root), "other": _fields(others)}


def test_a_failing_rank_stops_the_others_without_a_hang(tmp_path):
    """Rank 1 exits with code 3 while rank 0 waits for it (and would wait 120 s more):
    torchrun names rank 1 as the cause and stops rank 0 with SIGTERM within seconds."""
    started = time.monotonic()
    result = torchrun(str(WORKER), "fail", str(tmp_path), timeout=100)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "rank 1: failing on purpose with exit code 3" in result.stderr
    assert "rank 0: waiting for rank 1 in a barrier" in result.stderr
    assert "passed the barrier" not in result.stderr and "never stopped" not in result.stderr
    report = _failure_report(result.stderr)
    assert report["root"]["rank"] == "1 (local_rank: 1)", result.stderr
    assert report["root"]["exitcode"].startswith("3 "), result.stderr
    # rank 0 did not end by itself: torchrun stopped it once rank 1 had failed
    assert report["other"]["rank"] == "0 (local_rank: 0)", result.stderr
    assert re.match(r"-15 .*\(SIGTERM\)", report["other"]["exitcode"]), result.stderr
    assert "Sending process" in result.stderr and "closing signal SIGTERM" in result.stderr
    # startup on 2 busy cores takes ~10 s; a hang would take the 120 s rank 0 waits
    assert elapsed < 60, elapsed


def test_killed_under_torchrun_then_resumed_continues(tmp_path):
    args = [
        sys.executable, "-m", "gan", "train", "--data", str(MNIST_1K), "--device", "cpu",
        "--nproc", "2", "--batch-size", "8", "--max-steps", "40", "--log-every", "1",
        "--checkpoint-every", "10", "--workdir", str(tmp_path), "--run-name", "k",
        "--resume", "auto-or-new",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    ckpt = tmp_path / "checkpoints" / "k" / "step-0000010.pt"
    deadline = time.monotonic() + 180
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
    proc.wait(timeout=30)
    assert ckpt.exists()

    resumed = subprocess.run(args, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    history = [json.loads(line) for line in (tmp_path / "logs/k/history.jsonl").open()]
    assert [r["step"] for r in history] == list(range(1, 41))
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 40

    one = run_gan("train", "--resume", "auto", "--max-steps", "50", "--workdir", str(tmp_path),
                  "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert one.returncode == 1 and "same number" in one.stderr
    assert "Traceback" not in one.stderr


def test_sigterm_to_the_launcher_stops_both_ranks_after_the_step_and_resumes(tmp_path):
    """`kill PID` of `gan train --nproc 2`: torchrun passes SIGTERM to both ranks, which
    agree to stop after the same step and save one checkpoint; --resume auto goes on."""
    args = [
        sys.executable, "-m", "gan", "train", "--data", str(MNIST_1K), "--device", "cpu",
        "--nproc", "2", "--batch-size", "8", "--max-steps", "100000", "--log-every", "1",
        "--checkpoint-every", "100000", "--sample-every", "100000", "--workdir", str(tmp_path),
        "--run-name", "t",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            start_new_session=True)  # fmt: skip
    history = tmp_path / "logs" / "t" / "history.jsonl"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if history.exists() and history.stat().st_size:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)  # the launcher alone, as `kill PID` does
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    stops = re.findall(r"^(\[rank 1\] )?\S+ WARNING\s+Stop requested: saving a checkpoint at "
                       r"step (\d+)\.$", err, re.M)  # fmt: skip
    assert len(stops) == 2 and {rank for rank, _ in stops} == {"", "[rank 1] "}, err
    step = int(stops[0][1])
    assert {int(s) for _, s in stops} == {step} and step >= 1, err  # the same step on both
    assert out.count(f"Stopped run t at step {step}") == 1, out  # rank 0 reports
    folder = tmp_path / "checkpoints" / "t"
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt", f"step-{step:07d}.pt"]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == step and state["loop"]["world_size"] == 2
    assert len(state["loop"]["rng_ranks"]) == 2
    assert [json.loads(line)["step"] for line in history.open()] == list(range(1, step + 1))
    status = json.loads((tmp_path / "logs" / "t" / "status.json").read_text())
    assert status["status"] == "interrupted" and status["step"] == step

    resumed = run_gan("train", "--resume", "auto", "--nproc", "2", "--max-steps", str(step + 2),
                      "--workdir", str(tmp_path), "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert (
        f"at step {step}" in resumed.stderr
        and f"Finished run t at step {step + 2}" in resumed.stdout
    )
    assert [json.loads(line)["step"] for line in history.open()] == list(range(1, step + 3))
    run = json.loads((tmp_path / "logs" / "t" / "run.json").read_text())
    assert run["resumed_at_step"] == step
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == step + 2

    # The launcher itself ends as a single process does on SIGTERM: exit 0, no traceback.
    assert "Traceback" not in err, err
    assert proc.returncode == 0, err


def test_sync_bn_is_refused_on_the_cpu(tmp_path):
    result = run_gan(
        "train", "--data", str(MNIST_1K), "--device", "cpu", "--max-steps", "1", "--sync-bn",
        "--workdir", str(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1 and "--sync-bn needs CUDA" in result.stderr
    assert "Traceback" not in result.stderr


def test_fid_during_training_under_two_processes_finishes(tmp_path):
    """Only rank 0 evaluates: FID must not wait for the others, and a new best at the last
    step must not leave the final checkpoint's gather to one process."""
    result = run_gan(
        "train", "--data", str(MNIST_1K), "--model", "mlp", "--device", "cpu", "--nproc", "2",
        "--batch-size", "8", "--max-steps", "6", "--eval-every", "3", "--eval-samples", "16",
        "--workdir", str(tmp_path), "--run-name", "f", cwd=tmp_path, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "New best FID" in result.stderr
    assert {p.name for p in (tmp_path / "checkpoints" / "f").iterdir()} >= {"best.pt"}
