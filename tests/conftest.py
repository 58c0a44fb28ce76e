"""Shared fixtures: the bundled 1,000-digit MNIST slice, ../shared/data, a CLI runner."""

from __future__ import annotations

import contextlib
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


def _compile_installed_packages() -> None:
    """Where PYTHONDONTWRITEBYTECODE is set, Python writes no .pyc files, so every `gan`
    subprocess of the suite would compile PyTorch's sources again (seconds each). Write
    them once, as `uv sync --compile-bytecode` would; with them there, this is a quick
    check of modification times."""
    if not sys.dont_write_bytecode:
        return
    import compileall
    import sysconfig

    compileall.compile_dir(sysconfig.get_paths()["purelib"], quiet=2)


_compile_installed_packages()

needs_shared = pytest.mark.skipif(
    not (SHARED_MNIST.is_dir() and SHARED_MRI.is_file()),
    reason="../shared/data (full MNIST test split, MNI T1 volume) is not beside this clone",
)


@pytest.fixture
def mnist_dir() -> Path:
    return MNIST_1K


def run_gan(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (python -m gan), as a user would.

    For tests where the process boundary is what is checked: exit status as the shell sees
    it, signals, kill -9, torchrun, start-up time. Elsewhere use `run_cli`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gan", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run `gan ARGS` in this process (Typer's CliRunner) from `cwd`, shaped like `run_gan`.

    An exception other than the command's own exit fails the test: a user would have
    seen a traceback."""
    from typer.testing import CliRunner

    from gan.cli import app

    before = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    finally:
        os.chdir(before)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"gan {' '.join(map(str, args))} raised {result.exception!r}"
        ) from result.exception
    return subprocess.CompletedProcess(
        ["gan", *map(str, args)], result.exit_code, result.stdout, result.stderr
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The lines of a command's stderr that report an error ('Error: ...'): a refusal has
    exactly one (run_cli itself fails on an exception that would have been a traceback)."""
    return [line for line in result.stderr.splitlines() if line.startswith("Error")]


def _remove_tree(root: Path) -> None:
    """Remove a folder tree without recursion (shutil.rmtree recurses a level a frame)."""
    folders, stack = [], [root]
    while stack:
        folders.append(stack.pop())
        stack += [Path(e.path) for e in os.scandir(folders[-1]) if e.is_dir(follow_symlinks=False)]
    for folder in reversed(folders):
        for entry in os.scandir(folder):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        os.rmdir(folder)


def _messages(level: str):
    """The messages loguru logs at `level` or above while a test runs."""
    from loguru import logger

    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level=level)
    yield messages
    with contextlib.suppress(ValueError):  # the CLI, run in-process, sets its own sinks
        logger.remove(sink)


@pytest.fixture
def logged():
    """Messages loguru logs at INFO or above while the test runs."""
    yield from _messages("INFO")


@pytest.fixture
def warnings_logged():
    """Messages loguru logs at WARNING or above while the test runs."""
    yield from _messages("WARNING")


@pytest.fixture
def nest():
    """nest(folder, depth): `depth` folders named `a`, each inside the last, under
    `folder`; returns the deepest. Made one by one (os.makedirs recurses) and removed
    after the test without recursion: pytest's own cleanup of tmp_path would crash on
    them, in this session and in every later one."""
    made: list[Path] = []

    def make(folder: Path, depth: int) -> Path:
        made.append(folder / "a")
        for _ in range(depth):
            folder = folder / "a"
            folder.mkdir()
        return folder

    yield make
    for top in made:
        if top.exists():
            _remove_tree(top)
