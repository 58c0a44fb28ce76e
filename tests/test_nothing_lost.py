"""No resume mode overwrites a run: unloadable checkpoints, copied runs, rewinds, and
checkpoints that belong to no run. Each test snapshots the files it must not touch."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from gan.checkpoint import load_checkpoint, save_atomic, step_files
from tests.conftest import error_lines, run_cli

COMMON = ["--device", "cpu", "--batch-size", "8", "--log-every", "1", "--sample-every", "3",
          "--checkpoint-every", "3", "--keep-checkpoints", "100", "--augment", "none",
          "--lr-decay", "0", "--no-conditional"]  # fmt: skip


def train(workdir: Path, mnist_dir: Path, *args: str, ok: bool = True):
    result = run_cli("train", "--data", mnist_dir, *COMMON, "--workdir", workdir, *args,
                     cwd=workdir)  # fmt: skip
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file below the folders, by path, with a digest of its bytes."""
    found = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name != ".lock":
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run_folders(workdir: Path, run: str) -> list[Path]:
    return [workdir / kind / run for kind in ("checkpoints", "logs", "assets")]


def steps_of(workdir: Path, run: str) -> list[int]:
    return [s for s, _ in step_files(workdir / "checkpoints" / run)]


def history_steps(workdir: Path, run: str) -> list[int]:
    lines = (workdir / "logs" / run / "history.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def expect_refusal(result, *phrases: str) -> None:
    assert result.returncode == 1, result.stderr
    assert len(error_lines(result)) == 1, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.mark.parametrize("damage", ["truncated", "newer-format"])
def test_auto_or_new_refuses_a_run_whose_checkpoints_do_not_load(tmp_path, mnist_dir, damage):
    train(tmp_path, mnist_dir, "--max-steps", "6", "--run-name", "r")
    folder = tmp_path / "checkpoints" / "r"
    (folder / "last.pt").unlink()  # a hard link to step 6: damaged below as its own file
    for _, path in step_files(folder):
        if damage == "truncated":
            path.write_bytes(path.read_bytes()[:2000])
        else:
            save_atomic({**load_checkpoint(path), "format_version": 99}, path)
    shutil.copyfile(folder / "step-0000006.pt", folder / "last.pt")
    before = snapshot(*run_folders(tmp_path, "r"))
    result = train(tmp_path, mnist_dir, "--max-steps", "9", "--run-name", "r", "--resume",
                   "auto-or-new", ok=False)  # fmt: skip
    expect_refusal(result, "No checkpoint of run 'r'", "step-0000006.pt", "loads")
    assert snapshot(*run_folders(tmp_path, "r")) == before  # not a byte changed


def test_auto_or_new_starts_over_only_with_the_old_files_set_aside(tmp_path, mnist_dir):
    """A run killed before its first checkpoint has logs but no checkpoint: it starts
    again, and its earlier files move into abandoned-*/ instead of being overwritten."""
    train(tmp_path, mnist_dir, "--max-steps", "2", "--checkpoint-every", "1000",
          "--run-name", "r")  # fmt: skip
    for path in (tmp_path / "checkpoints" / "r").glob("*.pt"):
        path.unlink()  # as if it had died before saving one
    before = snapshot(*run_folders(tmp_path, "r"))
    result = train(tmp_path, mnist_dir, "--max-steps", "4", "--run-name", "r", "--resume",
                   "auto-or-new")  # fmt: skip
    assert "No checkpoint to resume from" in result.stderr and "aside" in result.stderr
    assert history_steps(tmp_path, "r") == [1, 2, 3, 4]
    moved = {}
    for folder in run_folders(tmp_path, "r")[1:]:
        (aside,) = folder.glob("abandoned-*")
        moved |= snapshot(aside)
    old = sorted(before.values())
    assert sorted(digest for digest in moved.values()) == old  # every earlier file, intact


def test_a_copied_run_trains_into_the_copy_and_leaves_the_original_alone(tmp_path, mnist_dir):
    train(tmp_path, mnist_dir, "--max-steps", "6", "--run-name", "a")
    for kind in ("checkpoints", "logs", "assets"):
        shutil.copytree(tmp_path / kind / "a", tmp_path / kind / "b")
    before = snapshot(*run_folders(tmp_path, "a"))
    result = train(tmp_path, mnist_dir, "--max-steps", "9", "--run-name", "b", "--resume",
                   "auto")  # fmt: skip
    assert "saved by run 'a'; it goes on as run 'b'" in result.stderr
    assert snapshot(*run_folders(tmp_path, "a")) == before
    assert steps_of(tmp_path, "b") == [3, 6, 9]
    assert load_checkpoint(tmp_path / "checkpoints" / "b" / "step-0000009.pt")["run_name"] == "b"
    assert history_steps(tmp_path, "b") == list(range(1, 10))
    assert json.loads((tmp_path / "logs" / "b" / "run.json").read_text())["run_name"] == "b"


def test_a_copied_run_resumed_by_path_is_the_copy(tmp_path, mnist_dir):
    train(tmp_path, mnist_dir, "--max-steps", "6", "--run-name", "a")
    shutil.copytree(tmp_path / "checkpoints" / "a", tmp_path / "checkpoints" / "b")
    before = snapshot(*run_folders(tmp_path, "a"))
    path = tmp_path / "checkpoints" / "b" / "step-0000006.pt"
    train(tmp_path, mnist_dir, "--max-steps", "9", "--resume", path)
    assert snapshot(*run_folders(tmp_path, "a")) == before
    assert steps_of(tmp_path, "b") == [3, 6, 9]


def test_a_rewind_moves_the_newer_timeline_aside_and_auto_follows_the_new_one(tmp_path, mnist_dir):
    train(tmp_path, mnist_dir, "--max-steps", "12", "--run-name", "r")
    ckpts, logs, assets = run_folders(tmp_path, "r")
    old = snapshot(ckpts)
    old_history = (logs / "history.jsonl").read_bytes()
    old_grid = (assets / "samples-0000012.png").read_bytes()
    result = train(tmp_path, mnist_dir, "--resume", ckpts / "step-0000006.pt", "--stop-at", "7")
    assert "moved the files from after step 6 aside" in result.stderr
    (aside,) = ckpts.glob("abandoned-*")
    kept = {Path(p).name: d for p, d in snapshot(aside).items()}
    for step in (9, 12):  # the old timeline's checkpoints, byte for byte
        name = f"step-{step:07d}.pt"
        assert kept[name] == old[str(ckpts / name)]
    assert "last.pt" in kept
    (logs_aside,) = logs.glob("abandoned-*")
    assert (logs_aside / "history.jsonl").read_bytes() == old_history
    (assets_aside,) = assets.glob("abandoned-*")
    assert (assets_aside / "samples-0000012.png").read_bytes() == old_grid
    assert steps_of(tmp_path, "r") == [3, 6, 7]
    # --resume auto now continues the new timeline (step 7), not the old step 12.
    again = train(tmp_path, mnist_dir, "--run-name", "r", "--resume", "auto", "--max-steps", "8")
    assert "at step 7" in again.stderr
    assert history_steps(tmp_path, "r") == list(range(1, 9))


def test_a_rewind_with_few_kept_checkpoints_does_not_prune_its_own_new_files(tmp_path, mnist_dir):
    ckpts = tmp_path / "checkpoints" / "r"
    train(tmp_path, mnist_dir, "--max-steps", "12", "--run-name", "r", "--keep-checkpoints", "2",
          "--stop-at", "3")  # fmt: skip
    early = (ckpts / "step-0000003.pt").read_bytes()
    train(tmp_path, mnist_dir, "--run-name", "r", "--resume", "auto", "--keep-checkpoints", "2")
    assert steps_of(tmp_path, "r") == [9, 12]
    (ckpts / "step-0000003.pt").write_bytes(early)  # back from a backup
    train(tmp_path, mnist_dir, "--resume", ckpts / "step-0000003.pt", "--stop-at", "4",
          "--keep-checkpoints", "2")  # fmt: skip
    assert steps_of(tmp_path, "r") == [3, 4]  # step 4 was not pruned in favour of 9 and 12


def test_a_loose_checkpoint_does_not_train_into_an_existing_run(tmp_path, mnist_dir):
    train(tmp_path, mnist_dir, "--max-steps", "6", "--run-name", "r")
    loose = tmp_path / "copy.pt"
    shutil.copyfile(tmp_path / "checkpoints" / "r" / "step-0000003.pt", loose)
    before = snapshot(*run_folders(tmp_path, "r"))
    result = train(tmp_path, mnist_dir, "--resume", loose, ok=False)
    expect_refusal(result, "Run 'r' already has outputs", "--run-name")
    assert snapshot(*run_folders(tmp_path, "r")) == before
    forked = train(tmp_path, mnist_dir, "--resume", loose, "--run-name", "s", "--max-steps", "5")
    assert "goes on as run 's'" in forked.stderr
    assert history_steps(tmp_path, "s") == [4, 5]
    assert snapshot(*run_folders(tmp_path, "r")) == before


def test_resume_from_best_pt(tmp_path, mnist_dir):
    train(tmp_path, mnist_dir, "--max-steps", "6", "--run-name", "r", "--eval-every", "3",
          "--eval-samples", "64")  # fmt: skip
    best = tmp_path / "checkpoints" / "r" / "best.pt"
    best_step = load_checkpoint(best)["step"]
    result = train(tmp_path, mnist_dir, "--resume", best, "--max-steps", "7", "--eval-every", "3",
                   "--eval-samples", "64")  # fmt: skip
    assert f"at step {best_step}" in result.stderr
    assert load_checkpoint(tmp_path / "checkpoints" / "r" / "last.pt")["step"] == 7


def test_resume_from_a_checkpoint_without_a_digest(tmp_path, mnist_dir):
    train(tmp_path, mnist_dir, "--max-steps", "3", "--run-name", "r")
    path = tmp_path / "checkpoints" / "r" / "step-0000003.pt"
    torch.save(load_checkpoint(path), path)  # as an older gan wrote it: no digest inside
    result = train(tmp_path, mnist_dir, "--resume", path, "--max-steps", "5")
    assert "no content digest" in result.stderr and "at step 3" in result.stderr
    assert history_steps(tmp_path, "r") == list(range(1, 6))


def test_the_stored_workdir_never_chooses_where_a_resume_writes(tmp_path, mnist_dir):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    train(work, mnist_dir, "--max-steps", "3", "--run-name", "r")
    state = load_checkpoint(work / "checkpoints" / "r" / "last.pt")
    state["config"]["train"]["workdir"] = str(elsewhere)
    loose = tmp_path / "handed.pt"
    save_atomic(state, loose)
    result = run_cli("train", "--data", mnist_dir, *COMMON, "--resume", loose, "--run-name", "t",
                     "--max-steps", "4", cwd=work)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not elsewhere.exists()
    assert steps_of(work, "t") == [4]


def test_a_state_that_does_not_fit_touches_nothing_of_the_run(tmp_path, mnist_dir):
    train(tmp_path, mnist_dir, "--max-steps", "6", "--run-name", "r")
    early = tmp_path / "checkpoints" / "r" / "step-0000003.pt"
    state = load_checkpoint(early)
    state["grids"]["fixed_latents"] = torch.zeros(3)
    (tmp_path / "checkpoints" / "r" / "step-0000003.pt").unlink()
    save_atomic(state, early)
    before = snapshot(*run_folders(tmp_path, "r"))
    result = train(tmp_path, mnist_dir, "--resume", early, ok=False)
    expect_refusal(result, "does not fit this run", "nothing of the run was changed")
    assert snapshot(*run_folders(tmp_path, "r")) == before  # no rewind, no history cut
