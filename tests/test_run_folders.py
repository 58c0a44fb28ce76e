"""Run folders that cannot be written through, run files read back defensively, the
leftovers of a kill, and rewinds that set aside every later file (issue 42, points 1, 7
and 8). Each test plants what a tarball or a shared workdir could hold and checks that
the other file is unchanged and the command ends in a sentence or a clean success."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from loguru import logger

from gan.atomic import atomic_write, temp_name
from gan.checkpoint import load_checkpoint, save_atomic
from gan.runs.aside import set_aside
from gan.runs.folders import RunPaths
from gan.runs.history import read_history
from gan.runs.status import StatusRecorder
from tests.conftest import MNIST_1K, run_cli, run_gan

TINY = ["--dataset", "mnist", "--data", str(MNIST_1K), "--model", "mlp", "--device", "cpu",
        "--batch-size", "8", "--log-every", "1", "--sample-every", "2", "--checkpoint-every",
        "2", "--keep-checkpoints", "10", "--no-conditional"]  # fmt: skip
PRECIOUS = b"another run's checkpoint, not to be touched\n"


def train(workdir: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = run_cli("train", *TINY, "--workdir", workdir, *args, cwd=workdir)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def refused(result: subprocess.CompletedProcess, *phrases: str) -> None:
    """Exit 1 with one sentence (one line of error) naming `phrases`."""
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]


def digest(*folders: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Run r: 4 steps, checkpoints at 2 and 4, grids at 2 and 4."""
    work = tmp_path_factory.mktemp("trained")
    train(work, "--run-name", "r", "--max-steps", "4")
    return work


@pytest.fixture
def work(trained, tmp_path) -> Path:
    """A copy of the trained workdir, with another run's precious file beside it."""
    copy = tmp_path / "w"
    shutil.copytree(trained, copy, symlinks=True)
    (copy / "checkpoints" / "other").mkdir()
    (copy / "checkpoints" / "other" / "last.pt").write_bytes(PRECIOUS)
    return copy


def precious(work: Path) -> Path:
    return work / "checkpoints" / "other" / "last.pt"


# ---- point 1: nothing written through a link -----------------------------------------------
@pytest.mark.parametrize("how", ["symlink", "hardlink", "symlink-with-outputs"])
def test_a_lock_linked_to_another_runs_checkpoint_is_not_truncated(work, how):
    logs = work / "logs" / "x"
    logs.mkdir(parents=True)
    (os.link if how == "hardlink" else os.symlink)(precious(work), logs / ".lock")
    if how == "symlink-with-outputs":  # today refused, but only after the lock was truncated
        (logs / "history.jsonl").write_text('{"step": 1}\n')
    refused(train(work, "--run-name", "x", "--max-steps", "2", ok=False), ".lock")
    assert precious(work).read_bytes() == PRECIOUS
    assert not (work / "checkpoints" / "x").exists()


@pytest.mark.parametrize("name", ["history.jsonl", "train.log", "status.json", "run.json"])
def test_run_files_planted_as_links_are_not_written_through_on_resume(work, name):
    planted = work / "logs" / "r" / name
    planted.unlink()
    planted.symlink_to(precious(work))
    before = digest(work / "checkpoints" / "r", work / "logs" / "r")
    result = train(work, "--run-name", "r", "--resume", "auto", "--max-steps", "6", ok=False)
    refused(result, name, "a link", "nothing was changed")
    assert precious(work).read_bytes() == PRECIOUS
    assert planted.is_symlink()
    assert digest(work / "checkpoints" / "r", work / "logs" / "r") == before


@pytest.mark.parametrize("folder", ["checkpoints/x", "logs/x", "assets/x", "logs"])
def test_a_new_run_whose_folder_is_a_link_is_refused_and_its_target_untouched(tmp_path, folder):
    work, target = tmp_path / "w", tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    (work / folder).parent.mkdir(parents=True, exist_ok=True)
    (work / folder).symlink_to(target, target_is_directory=True)
    result = train(work, "--run-name", "x", "--max-steps", "2", ok=False)
    refused(result, "is a link or leads outside", "nothing was changed")
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("kind", ["checkpoints", "logs", "assets"])
def test_a_resumed_run_whose_folder_is_a_link_is_refused_and_its_target_untouched(work, kind):
    real = work.parent / f"moved-{kind}"
    (work / kind / "r").rename(real)
    (work / kind / "r").symlink_to(real, target_is_directory=True)
    before = digest(real)
    names = sorted(p.name for p in real.iterdir())
    result = train(work, "--run-name", "r", "--resume", "auto", "--max-steps", "6", ok=False)
    refused(result, "is a link or leads outside")
    assert digest(real) == before and sorted(p.name for p in real.iterdir()) == names


def test_an_export_into_a_run_folder_that_is_a_link_is_refused(work):
    real = work.parent / "moved-checkpoints"
    (work / "checkpoints" / "r").rename(real)
    (work / "checkpoints" / "r").symlink_to(real, target_is_directory=True)
    names = sorted(p.name for p in real.iterdir())
    result = run_cli("export", "checkpoints/r/step-0000004.pt", cwd=work)
    refused(result, "is a link or leads outside", "give --out")
    assert sorted(p.name for p in real.iterdir()) == names


def test_grids_are_written_whole_never_through_a_link(work):
    assets = work / "assets" / "x"
    assets.mkdir(parents=True)
    for name in ("reals.png", "samples-0000002.png"):
        (assets / name).symlink_to(precious(work))
    train(work, "--run-name", "x", "--max-steps", "2")
    assert precious(work).read_bytes() == PRECIOUS
    for name in ("reals.png", "samples-0000002.png"):
        path = assets / name
        assert not path.is_symlink() and path.read_bytes()[:4] == b"\x89PNG"


SAMPLES = {  # --format: (extra options, the default output's name, what it starts with)
    "grid": ((), "sample-0000004.png", b"\x89PNG"),
    "npy": ((), "sample-0000004.npy", b"\x93NUMPY"),
    "gif": (("--interpolate", "2"), "walk-0000004.gif", b"GIF8"),
}


@pytest.mark.parametrize("fmt", SAMPLES)
def test_gan_sample_writes_whole_never_through_a_link(work, fmt):
    options, name, magic = SAMPLES[fmt]
    out = work / "assets" / "r" / name
    out.symlink_to(precious(work))
    done = run_cli("sample", "checkpoints/r/last.pt", "--num", "2", "--format", fmt, *options,
                   "--device", "cpu", cwd=work)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert precious(work).read_bytes() == PRECIOUS
    assert not out.is_symlink() and out.read_bytes().startswith(magic)


@pytest.mark.parametrize("planted", ["png folder", "png file", "run folder"])
def test_gan_sample_refuses_a_linked_output_folder_and_follows_no_link(work, planted):
    target = work.parent / "elsewhere"
    target.mkdir()
    folder = work / "assets" / "r" / "sample-0000004"
    if planted == "png folder":  # --format png's default folder
        folder.symlink_to(target, target_is_directory=True)
    elif planted == "png file":  # one image's name in it
        folder.mkdir()
        (folder / "00000.png").symlink_to(precious(work))
    else:  # the run's assets folder itself
        shutil.rmtree(work / "assets" / "r")
        (work / "assets" / "r").symlink_to(target, target_is_directory=True)
    done = run_cli("sample", "checkpoints/r/last.pt", "--num", "2", "--format", "png",
                   "--device", "cpu", cwd=work)  # fmt: skip
    if planted == "png file":  # replaced, not written through
        assert done.returncode == 0, done.stderr
        assert not (folder / "00000.png").is_symlink()
    else:
        refused(done, "is a link")
    assert list(target.iterdir()) == [] and precious(work).read_bytes() == PRECIOUS


def test_gan_bench_writes_its_json_whole_never_through_a_link(tmp_path):
    from gan.bench import write_json

    target, out = tmp_path / "precious", tmp_path / "bench.json"
    target.write_bytes(PRECIOUS)
    out.symlink_to(target)
    write_json({"results": []}, out)
    assert target.read_bytes() == PRECIOUS and json.loads(out.read_text()) == {"results": []}


@pytest.fixture(scope="module")
def conditional(tmp_path_factory) -> Path:
    """A conditional 2-step run's last.pt whose class names no file system takes as they
    are: a name of dots, a blank, a direction mark, a line break, a NUL, two names that
    differ in case only, a name shaped like another's folder with its index."""
    work = tmp_path_factory.mktemp("conditional")
    train(work, "--run-name", "c", "--max-steps", "2", "--conditional")
    state = load_checkpoint(work / "checkpoints" / "c" / "last.pt")
    state["model"]["classes"] = ["..", ".", " ", "\u202e", "a\nb", "a\x00b", "A", "a", "x", "x-8"]
    return save_atomic(state, work / "checkpoints" / "c" / "named.pt")


def test_class_names_map_to_folders_no_two_classes_share_and_labels_keep_one_a_line(
    conditional, tmp_path
):
    import codecs

    classes = load_checkpoint(conditional)["model"]["classes"]
    done = run_cli("sample", conditional, "--num", "20", "--format", "png", "--out",
                   tmp_path / "png", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    folders = sorted((tmp_path / "png").iterdir())
    assert len({f.name.casefold() for f in folders}) == len(classes) == len(folders)
    assert all(len(list(f.iterdir())) == 2 for f in folders)  # nothing overwritten
    assert {"A-6", "a-7", "x", "x-8"} <= {f.name for f in folders}
    done = run_cli("sample", conditional, "--num", "20", "--format", "npy", "--out",
                   tmp_path / "all.npy", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "all-labels.txt").read_text().splitlines()
    names = [codecs.decode(line, "unicode_escape") for line in lines]
    assert len(lines) == 20 and set(names) == set(classes)
    from gan.outputs.sample_files import class_folders  # a name shaped like an index

    assert len({f.casefold() for f in class_folders(["x", "X", "x-1", "x-0"])}) == 4


def test_losses_png_is_written_whole_never_through_a_link(work):
    out = work / "assets" / "r" / "losses.png"
    out.symlink_to(precious(work))
    result = run_cli("plot-history", "logs/r", cwd=work)
    assert result.returncode == 0, result.stderr
    assert precious(work).read_bytes() == PRECIOUS
    assert not out.is_symlink() and out.read_bytes()[:4] == b"\x89PNG"


def test_a_link_at_the_temporary_name_is_never_followed(tmp_path):
    target, path = tmp_path / "precious", tmp_path / "status.json"
    target.write_bytes(PRECIOUS)
    temp_name(path).symlink_to(target)  # this process's and thread's own temporary name
    atomic_write(path, "{}\n")
    assert target.read_bytes() == PRECIOUS and path.read_text() == "{}\n"


def test_publishing_last_pt_without_hard_links_never_follows_a_planted_link(tmp_path, monkeypatch):
    """Where os.link fails (a filesystem without hard links, or a name already taken),
    last.pt is copied through a temporary file created exclusively, never through a link
    planted at a temporary name."""
    from gan.checkpoint import publish

    target, source, alias = tmp_path / "precious", tmp_path / "step.pt", tmp_path / "last.pt"
    target.write_bytes(PRECIOUS)
    source.write_bytes(b"the new checkpoint")
    temp_name(alias).symlink_to(target)

    def no_links(*args: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    publish(source, alias)
    assert target.read_bytes() == PRECIOUS and alias.read_bytes() == b"the new checkpoint"


def test_an_export_never_writes_through_a_link_at_its_temporary_name(trained, tmp_path):
    target, out = tmp_path / "precious", tmp_path / "g.pt2"
    target.write_bytes(PRECIOUS)
    temp_name(out).symlink_to(target)  # export runs in this process and thread
    result = run_cli("export", trained / "checkpoints" / "r" / "last.pt", "--format",
                     "exported", "--out", out, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == PRECIOUS and out.stat().st_size > len(PRECIOUS)


# ---- the leftovers of a kill ---------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_resume_removes_the_temporary_files_of_killed_writes_and_keeps_live_ones(work):
    dead, live = _dead_pid(), os.getppid()  # pytest's parent lives while the test runs
    folders = [work / kind / "r" for kind in ("checkpoints", "logs", "assets")]
    stale = [f / f".{name}.{dead}.140001.tmp" for f, name in zip(folders, ("step-0000006.pt",
             "status.json", "samples-0000006.png"), strict=True)]  # fmt: skip
    stale.append(work / "checkpoints" / f".last.pt.{dead}.140002.tmp")
    kept = [f / f".last.pt.{live}.140003.tmp" for f in folders[:1]]
    kept.append(work / "checkpoints" / f".last.pt.{live}.140004.tmp")
    kept.append(work / "checkpoints" / f".notes.{dead}.1.tmp")  # not last.pt: another's
    for path in stale + kept:
        path.write_bytes(b"partial")
    result = train(work, "--run-name", "r", "--resume", "auto", "--max-steps", "6")
    assert "Removed 4 temporary file(s) left by interrupted writes" in result.stderr
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)


# ---- point 1 and 7: a FIFO hangs nothing ---------------------------------------------------
def _fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    os.mkfifo(path)


def test_fifos_in_run_folders_do_not_hang_gan_runs(tmp_path):
    for name in ("history.jsonl", "run.json", "status.json", ".lock", "eval-0000002.json"):
        _fifo(tmp_path / "logs" / "f" / name)
    (tmp_path / "logs" / "g").mkdir()
    _fifo(tmp_path / "logs" / "g" / "history.jsonl")
    result = run_gan("runs", "--workdir", str(tmp_path), "--json", cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(r["run"] for r in json.loads(result.stdout)) == ["f", "g"]


def test_a_fifo_history_does_not_hang_plot_history(work):
    _fifo(work / "logs" / "z" / "history.jsonl")  # the newest history: plotted by default
    result = run_gan("plot-history", cwd=work, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (work / "assets" / "r" / "losses.png").is_file()
    given = run_gan("plot-history", "logs/z", cwd=work, timeout=60)
    assert given.returncode == 1 and "not a regular file" in given.stderr, given.stderr
    assert "Traceback" not in given.stderr


@pytest.mark.parametrize("name", ["history.jsonl", "status.json"])
def test_a_fifo_in_a_run_folder_does_not_hang_a_resume(work, name):
    _fifo(work / "logs" / "r" / name)
    result = run_gan("train", *TINY, "--workdir", str(work), "--run-name", "r", "--resume",
                     "auto", "--max-steps", "6", cwd=work, timeout=120)  # fmt: skip
    assert "Traceback" not in result.stderr
    refused(result, name, "a FIFO", "nothing was changed")


# ---- point 7: run files read back defensively ----------------------------------------------
BAD_LINES = [b"\xff\xfe not UTF-8\n", b"[1, 2]\n", b'"text"\n', b"[[[[" * 50_000 + b"\n"]


def test_history_lines_that_are_not_records_are_skipped_and_counted_once(work):
    history = work / "logs" / "r" / "history.jsonl"
    lines = history.read_bytes().splitlines(keepends=True)
    history.write_bytes(b"".join(lines[:2] + BAD_LINES + lines[2:]) + b'{"step": 5, "d_lo')
    warnings: list[str] = []
    sink = logger.add(lambda message: warnings.append(str(message)), level="WARNING")
    try:
        assert [r["step"] for r in read_history(history)] == [1, 2, 3, 4]
    finally:
        logger.remove(sink)
    assert len(warnings) == 1 and "Skipped 5 line(s)" in warnings[0]
    listed = run_cli("runs", "--workdir", work, "--json", cwd=work)
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["step"] == 4
    plotted = run_cli("plot-history", "logs/r", cwd=work)
    assert plotted.returncode == 0, plotted.stderr


def test_a_resume_drops_lines_that_are_not_records_and_goes_on(work):
    """A run that died after logging step 4 but before its checkpoint: the history is cut
    back to step 2, lines that are not records included, and the run goes on from there."""
    ckpts = work / "checkpoints" / "r"
    (ckpts / "step-0000004.pt").unlink()
    (ckpts / "last.pt").unlink()
    history = work / "logs" / "r" / "history.jsonl"
    history.write_bytes(history.read_bytes() + b"".join(BAD_LINES))
    result = train(work, "--run-name", "r", "--resume", "auto", "--max-steps", "5")
    assert "at step 2" in result.stderr and result.stderr.count("Skipped 4 line(s)") == 1
    steps = [json.loads(line)["step"] for line in history.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]


def test_history_readers_hold_bounded_memory_whatever_its_length(tmp_path):
    """`gan runs`, plot-history and a resume's cut stream history.jsonl and keep what
    they need (a few numbers; at most 2 x MAX_POINTS points; nothing): neither the file
    nor its records, whose dicts take ~75 times the bytes of a line `{}`."""
    import tracemalloc

    import matplotlib.pyplot as plt

    from gan.outputs import plotting
    from gan.runs.history import truncate_history
    from gan.runs.overview import summarize

    paths = RunPaths(tmp_path, "h")
    paths.logs.mkdir(parents=True)
    history, count = paths.logs / "history.jsonl", 30_000
    line = b'{"step": %d, "d_loss": 1.5, "g_loss": 2.5, "fid": %d}\n'
    history.write_bytes(
        b"{}\n" * count + b"".join(line % (i, 9 - i % 7) for i in range(1, count + 1))
    )

    def peak(call):
        tracemalloc.start()
        try:
            return call(), tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    summary, used = peak(lambda: summarize(paths))
    assert (summary.step, summary.last_fid, summary.best_fid) == (count, 9 - count % 7, 3)
    assert used < 4 << 20
    (losses, fids, best, per_point), used = peak(lambda: plotting.read_points(history))
    assert len(losses) <= 2 * plotting.MAX_POINTS < count and per_point == 2 and best == (6, 3)
    assert used < 16 << 20 and np.nanmax(losses[:, 1]) == 1.5
    plt.close(plotting.history_figure(history))
    _, used = peak(lambda: truncate_history(history, count // 2))
    assert used < 4 << 20
    assert history.read_bytes() == b"".join(line % (i, 9 - i % 7) for i in range(1, count // 2 + 1))


def test_numbers_beyond_a_float_in_a_history_are_gaps_not_a_crash(work):
    """Every numeric field read back goes through `gan.runs.status.number`."""
    huge = "1" + "0" * 400
    lines = [f'{{"step": 5, "d_loss": 1.0, "g_loss": 1.0, "fid": {huge}}}',
             f'{{"step": 6, "d_loss": {huge}, "g_loss": 1.0, "fid": 2.0}}',
             f'{{"step": {huge}, "d_loss": 1.0}}',
             f'{{"step": 7, "images_per_s": {huge}}}']  # fmt: skip
    history = work / "logs" / "r" / "history.jsonl"
    history.write_text(history.read_text() + "\n".join(lines) + "\n")
    plotted = run_cli("plot-history", "logs/r", cwd=work)
    assert plotted.returncode == 0, plotted.stderr
    listed = run_cli("runs", "--workdir", work, "--json", cwd=work)
    found = {r["run"]: r for r in json.loads(listed.stdout)}
    assert listed.returncode == 0 and found["r"]["step"] == 7, listed.stderr


def test_gan_runs_counts_a_folder_nested_past_the_recursion_limit(work, nest):
    (nest(work / "assets" / "r", 1200) / "deep.bin").write_bytes(bytes(1000))
    listed = run_cli("runs", "--workdir", work, "--json", cwd=work)
    assert listed.returncode == 0, listed.stderr
    run = {r["run"]: r for r in json.loads(listed.stdout)}["r"]
    assert run["size_bytes"] == sum(p.stat().st_size for p in run_files(work, "r"))


def run_files(work: Path, run: str) -> list[Path]:
    """The run's regular files, each once (a walk of the test's own, without recursion)."""
    files, seen = [], set()
    for kind in ("checkpoints", "logs", "assets"):
        stack = [work / kind / run]
        while stack:
            for entry in os.scandir(stack.pop()):
                info = entry.stat(follow_symlinks=False)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False) and info.st_ino not in seen:
                    seen.add(info.st_ino)
                    files.append(Path(entry.path))
    return files


def test_evaluate_writes_no_report_through_a_linked_run_folder(work):
    real = work.parent / "moved-logs"
    (work / "logs" / "r").rename(real)
    (work / "logs" / "r").symlink_to(real, target_is_directory=True)
    before = digest(real)
    done = run_cli("evaluate", "checkpoints/r/last.pt", "--data", MNIST_1K, "--num-samples",
                   "8", "--metrics", "fid", "--device", "cpu", cwd=work)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no report was written" in done.stderr and '"fid"' in done.stdout.splitlines()[-1]
    assert digest(real) == before and not list(work.rglob("*eval-*.json"))


@pytest.mark.parametrize("seconds", ['"abc"', "1e999", "[1, 2]", "1" + "0" * 400, "null"])
def test_a_status_with_a_bad_number_neither_crashes_nor_spreads(tmp_path, seconds):
    paths = RunPaths(tmp_path, "s")
    paths.logs.mkdir(parents=True)
    text = f'{{"status": "interrupted", "seconds": {seconds}, "started_unix": {seconds}}}'
    (paths.logs / "status.json").write_text(text)
    recorder = StatusRecorder(paths)
    recorder.training(1, 3)
    recorder.ended("finished", 3, 3)

    def no_constant(name: str) -> None:
        raise AssertionError(f"status.json holds {name}, which is not JSON")

    status = json.loads((paths.logs / "status.json").read_text(), parse_constant=no_constant)
    assert status["status"] == "finished" and 0 <= status["seconds"] < 60
    assert status["seconds_before"] == 0 and isinstance(status["started_unix"], float)
    listed = run_cli("runs", "--workdir", tmp_path, "--json", cwd=tmp_path)
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["seconds"] < 60


# ---- point 8: a rewind sets aside every later file; FIDs of one feature space --------------
def test_a_rewind_sets_aside_step_names_of_any_length(tmp_path):
    paths = RunPaths(tmp_path, "r")
    later = {
        paths.checkpoints: ["step-12345678.pt", "generator-12345678.onnx",
                            "generator-12345678.onnx.json"],
        paths.logs: ["eval-12345678.json"],
        paths.assets: ["samples-12345678.png"],
    }  # fmt: skip
    earlier = {
        paths.checkpoints: ["step-0000006.pt", "generator-0000006.pt2"],
        paths.logs: ["eval-0000006.json", "history.jsonl"],
        paths.assets: ["samples-0000006.png", "reals.png"],
    }
    for files in (later, earlier):
        for folder, names in files.items():
            folder.mkdir(parents=True, exist_ok=True)
            for name in names:
                (folder / name).write_text(name)
    set_aside(paths, 6)
    for folder, names in later.items():
        (aside,) = folder.glob("abandoned-*")
        assert all((aside / n).read_text() == n and not (folder / n).exists() for n in names)
    for folder, names in earlier.items():
        assert all((folder / n).is_file() for n in names)


def test_a_rewind_sets_aside_gan_exports_of_later_steps(work):
    ckpts = work / "checkpoints" / "r"
    exported = run_cli("export", ckpts / "step-0000004.pt", cwd=work)
    assert exported.returncode == 0, exported.stderr
    files = ["generator-0000004.safetensors", "generator-0000004.safetensors.json"]
    before = {name: (ckpts / name).read_bytes() for name in files}
    train(work, "--resume", ckpts / "step-0000002.pt", "--stop-at", "3")
    (aside,) = ckpts.glob("abandoned-*")
    assert {name: (aside / name).read_bytes() for name in files} == before
    assert not any((ckpts / name).exists() for name in files)


def _report(logs: Path, name: str, step: int, features: str, fid: float, count: int = 100,
            data: str = "aaaa0000", seed: int = 12345) -> None:  # fmt: skip
    report = {"step": step, "features": features, "fid": fid, "num_samples": count,
              "data_sha256": data, "seed": seed}  # fmt: skip
    (logs / name).write_text(json.dumps(report))


def test_gan_runs_compares_fids_of_one_feature_space_sample_count_and_data(tmp_path):
    """Training's FIDs (its space, --eval-samples, its data) alone where the history has
    any; else the reports of the newest report's features, sample count and data (any
    seed). Which setting that is, the JSON says."""
    logs = tmp_path / "logs" / "r"
    logs.mkdir(parents=True)
    run = {"model": {"name": "mlp", "image_shape": [1, 28, 28]},
           "train": {"eval_features": None, "eval_samples": 2000}}  # fmt: skip
    (logs / "run.json").write_text(json.dumps(run))
    history = [{"step": 2, "fid": 5.0}, {"step": 4, "fid": 4.0}, {"step": 6, "d_loss": 1.0}]
    (logs / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    _report(logs, "eval-0000004.json", 4, "mnist-lenet", 3.0)  # training's space, 100 samples
    _report(logs, "eval-0000004-random-conv.json", 4, "random-conv", 0.5)
    _report(logs, "eval-0000006-inception.json", 6, "inception-0123456789abcdef", 90.0)
    # a run that measured no FID while training: its newest report's setting alone
    other = tmp_path / "logs" / "q"
    other.mkdir()
    space = "inception-0123456789abcdef"
    _report(other, "eval-0000002.json", 2, "random-conv", 7.0)
    _report(other, "eval-0000008.json", 8, space, 60.0)
    _report(other, "eval-0000004.json", 4, space, 50.0)
    _report(other, "eval-0000003-s7.json", 3, space, 55.0, seed=7)  # the same setting
    _report(other, "eval-0000006-5000.json", 6, space, 10.0, count=5000)  # other samples
    _report(other, "eval-0000005-bbbb.json", 5, space, 20.0, data="bbbb0000")  # other data
    listed = run_cli("runs", "--workdir", tmp_path, "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    found = {r["run"]: r for r in json.loads(listed.stdout)}
    r, q = found["r"], found["q"]
    assert (r["last_fid"], r["best_fid"], r["fid_features"]) == (4.0, 4.0, "mnist-lenet")
    assert r["fid_setting"] == {"features": "mnist-lenet", "num_samples": 2000, "data": "training"}
    assert (q["last_fid"], q["best_fid"], q["fid_features"]) == (60.0, 50.0, space)
    assert q["fid_setting"] == {"features": space, "num_samples": 100, "data": "aaaa0000"}
    table = run_cli("runs", "--workdir", tmp_path, cwd=tmp_path).stdout.splitlines()
    assert "FEATURES" in table[0].split() and any("mnist-lenet" in row for row in table)
