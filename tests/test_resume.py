"""Exact resume, --resume auto, and a training run killed with SIGKILL at random moments."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan.checkpoint import load_checkpoint, step_files
from tests.conftest import error_lines, run_cli

# No augmentation and no learning-rate decay: adaptive augmentation's ramp and the decay
# follow the planned run length, so a run planned for 20 steps and then extended to 40 is
# not the same as one planned for 40 from the start (--stop-at keeps the plan).
COMMON = ["--device", "cpu", "--batch-size", "8", "--log-every", "1", "--sample-every", "1000",
          "--augment", "none", "--lr-decay", "0"]  # fmt: skip


def history(workdir: Path, run: str) -> list[dict]:
    lines = (workdir / "logs" / run / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def train(workdir: Path, mnist_dir: Path, *args: str) -> subprocess.CompletedProcess:
    result = run_cli("train", "--data", str(mnist_dir), *COMMON, "--workdir", str(workdir), *args,
                     cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def test_stop_at_20_and_resume_to_40_is_bit_identical(tmp_path, mnist_dir):
    whole, split = tmp_path / "whole", tmp_path / "split"
    whole.mkdir(), split.mkdir()
    train(whole, mnist_dir, "--max-steps", "40", "--checkpoint-every", "20", "--run-name", "r")
    train(split, mnist_dir, "--max-steps", "20", "--checkpoint-every", "20", "--run-name", "r")
    resumed = train(split, mnist_dir, "--max-steps", "40", "--resume", "auto")
    assert "Resumed from" in resumed.stderr

    a, b = history(whole, "r"), history(split, "r")
    assert [r["step"] for r in b] == list(range(1, 41))
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "epoch", "images_seen"):
        assert [r[key] for r in a] == [r[key] for r in b], key  # bit-identical, not close
    final_a = load_checkpoint(whole / "checkpoints" / "last.pt")
    final_b = load_checkpoint(split / "checkpoints" / "last.pt")
    for name, tensor in final_a["runtime"]["generator"].items():
        assert final_b["runtime"]["generator"][name].equal(tensor), name


def test_resume_refuses_options_that_change_the_run(tmp_path, mnist_dir):
    train(tmp_path, mnist_dir, "--max-steps", "2", "--run-name", "r")
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    for args, flag in (
        (["--batch-size", "16"], "--batch-size"),
        (["--model", "dcgan-proj"], "--model"),
        (["--image-size", "32x32"], "--image-size"),
        (["--seed", "5"], "--seed"),
    ):
        result = run_cli("train", "--resume", "auto", "--workdir", str(tmp_path), *args,
                         cwd=tmp_path)  # fmt: skip
        assert result.returncode == 1
        assert flag in result.stderr and len(error_lines(result)) == 1
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before


def test_resume_auto_or_new_without_checkpoints_starts_a_new_run(tmp_path, mnist_dir):
    result = train(
        tmp_path, mnist_dir, "--max-steps", "3", "--resume", "auto-or-new", "--run-name", "n"
    )
    assert "No checkpoint to resume from" in result.stderr
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 3


def test_resume_auto_with_a_mistyped_run_name_is_an_error_naming_the_runs(tmp_path, mnist_dir):
    train(tmp_path, mnist_dir, "--max-steps", "2", "--run-name", "mnist-a")
    result = run_cli("train", "--data", mnist_dir, *COMMON, "--workdir", tmp_path, "--resume",
                     "auto", "--run-name", "mnist-b", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and len(error_lines(result)) == 1
    assert "no checkpoint of run 'mnist-b'" in result.stderr and "mnist-a" in result.stderr
    assert "--resume auto-or-new" in result.stderr
    assert not (tmp_path / "logs" / "mnist-b").exists()  # nothing was started
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("train", "--data", mnist_dir, *COMMON, "--workdir", empty, "--resume",
                     "auto", cwd=empty)  # fmt: skip
    assert result.returncode == 1 and "there are none" in result.stderr


def test_resume_skips_a_corrupt_newest_checkpoint(tmp_path, mnist_dir):
    train(tmp_path, mnist_dir, "--max-steps", "6", "--checkpoint-every", "3", "--run-name", "c")
    newest = tmp_path / "checkpoints" / "c" / "step-0000006.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    result = train(tmp_path, mnist_dir, "--max-steps", "8", "--resume", "auto", "--run-name", "c")
    assert "Skipping step-0000006.pt" in result.stderr
    assert "at step 3" in result.stderr
    assert [r["step"] for r in history(tmp_path, "c")] == list(range(1, 9))


def _misfit(state: dict, how: str) -> None:
    """Damage a loaded checkpoint's state so that it still loads (its digest is written
    anew) but no longer fits the run built from it."""
    if how == "weight-missing":
        for key in ("generator", "generator_ema"):
            state["runtime"][key].pop(next(iter(state["runtime"][key])))
    elif how == "weight-shape":
        name = next(iter(state["runtime"]["discriminator"]))
        state["runtime"]["discriminator"][name] = torch.zeros(3)
    elif how == "rng-shape":
        state["recipe"]["noise_rng"] = torch.zeros(7, dtype=torch.uint8)
    elif how == "optimizer-groups":
        state["runtime"]["opt_g"]["param_groups"] = []
    elif how == "world-size-0":
        state["loop"]["world_size"] = 0


@pytest.mark.parametrize(
    "how", ["weight-missing", "weight-shape", "rng-shape", "optimizer-groups", "world-size-0"]
)
def test_resume_auto_passes_over_a_newest_checkpoint_that_loads_but_does_not_fit(
    tmp_path, mnist_dir, how
):
    """A checkpoint that loads (its digest matches) but whose state does not fit the run is
    passed over like one that does not load: --resume auto goes on from the one before,
    the misfit is set aside, not deleted; a path given explicitly is one sentence."""
    from gan.checkpoint import save_atomic

    train(tmp_path, mnist_dir, "--max-steps", "4", "--checkpoint-every", "2", "--run-name", "m")
    folder = tmp_path / "checkpoints" / "m"
    state = load_checkpoint(folder / "step-0000004.pt")
    state["step"] = 6
    _misfit(state, how)
    save_atomic(state, folder / "step-0000006.pt")
    given = run_cli("train", "--resume", folder / "step-0000006.pt", "--workdir", tmp_path,
                    "--max-steps", "8", cwd=tmp_path)  # fmt: skip
    assert given.returncode == 1 and len(error_lines(given)) == 1, given.stderr
    assert "does not fit this run" in error_lines(given)[0]
    result = train(tmp_path, mnist_dir, "--max-steps", "8", "--resume", "auto", "--run-name", "m")
    assert "step-0000006.pt: it loads but does not fit the run" in result.stderr
    assert "Resumed from" in result.stderr and "at step 4" in result.stderr
    assert [r["step"] for r in history(tmp_path, "m")] == list(range(1, 9))
    aside = list((folder).glob("abandoned-*/step-0000006.pt"))
    assert len(aside) == 1 and load_checkpoint(aside[0])["step"] == 6


def test_sigkill_at_random_moments_then_resume_reaches_the_end(tmp_path, mnist_dir):
    rng = random.Random(1234)
    total, cmd = 160, [
        sys.executable, "-m", "gan", "train", "--data", str(mnist_dir), *COMMON,
        "--workdir", str(tmp_path), "--run-name", "k", "--max-steps", "160",
        "--checkpoint-every", "15", "--keep-checkpoints", "3", "--resume", "auto-or-new",
    ]  # fmt: skip
    log = tmp_path / "logs" / "k" / "history.jsonl"
    kills = 0
    for _ in range(4):
        seen = log.stat().st_size if log.exists() else 0
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and log.stat().st_size > seen:
                break  # training is under way again
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 2
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)

    steps = [r["step"] for r in history(tmp_path, "k")]
    assert steps == list(range(1, total + 1))  # continuous: nothing duplicated or missing
    kept = step_files(tmp_path / "checkpoints" / "k")
    assert [s for s, _ in kept][-1] == total and len(kept) <= 3
    for _, path in kept:
        load_checkpoint(path)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == total
    assert not list((tmp_path / "checkpoints").rglob("*.tmp"))

    reference = tmp_path / "ref"
    reference.mkdir()
    train(reference, mnist_dir, "--max-steps", "160", "--checkpoint-every", "15", "--run-name", "k")
    assert [r["g_loss"] for r in history(reference, "k")] == [
        r["g_loss"] for r in history(tmp_path, "k")
    ]


def test_lr_decay_follows_the_plan_and_a_stopped_run_resumes_exactly(tmp_path, mnist_dir):
    whole, split = tmp_path / "whole", tmp_path / "split"
    whole.mkdir(), split.mkdir()
    decay = ["--max-steps", "30", "--lr-decay", "0.5", "--lr-g", "1e-3", "--lr-d", "5e-4"]
    decay += ["--run-name", "r"]
    train(whole, mnist_dir, *decay)
    train(split, mnist_dir, *decay, "--stop-at", "20")
    train(split, mnist_dir, "--resume", "auto", "--lr-decay", "0.5")  # (COMMON says 0)
    a, b = history(whole, "r"), history(split, "r")
    assert [r["g_loss"] for r in a] == [r["g_loss"] for r in b]
    state = load_checkpoint(whole / "checkpoints" / "last.pt")
    # the last step (index 29) ran at 1/15 of the rate: 15 steps of decay, 1 step left
    assert state["runtime"]["opt_g"]["param_groups"][0]["lr"] == pytest.approx(1e-3 / 15)
    assert state["runtime"]["opt_d"]["param_groups"][0]["lr"] == pytest.approx(5e-4 / 15)


def test_config_toml_of_a_stopped_run_with_resume_auto_trains_on(tmp_path, mnist_dir):
    """A run stopped early (here by --time-limit; Ctrl-C writes the same) records stop_at in
    its config.toml; `--config config.toml --resume auto` trains on to the plan's end
    instead of stopping at once and calling the run finished."""
    train(tmp_path, mnist_dir, "--max-steps", "150", "--time-limit", "0.2", "--run-name", "r")
    stopped = load_checkpoint(tmp_path / "checkpoints" / "r" / "last.pt")["step"]
    config = tmp_path / "logs" / "r" / "config.toml"
    assert 0 < stopped < 150 and f"stop_at = {stopped}" in config.read_text()
    # (a longer --time-limit for this session: the checkpoint's 0.2 s would stop it again)
    again = ["--config", config, "--resume", "auto", "--time-limit", "1h"]
    resumed = train(tmp_path, mnist_dir, *again)
    assert "already at step" not in resumed.stderr
    assert f"The config file's stop_at {stopped} is where the run stopped" in resumed.stderr
    assert load_checkpoint(tmp_path / "checkpoints" / "r" / "last.pt")["step"] == 150
    status = json.loads((tmp_path / "logs" / "r" / "status.json").read_text())
    assert (status["status"], status["step"]) == ("finished", 150)
