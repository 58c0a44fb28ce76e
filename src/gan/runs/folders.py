"""Where a run writes: checkpoints/<run>, logs/<run>, assets/<run> under the workdir, and
the lock that lets one trainer at a time write them.

The lock is `logs/<run>/.lock`, held with `fcntl.flock` for as long as a trainer runs. The
OS drops it when the process ends, however it ends (`kill -9` included), so it is never
left stuck; the file itself stays (removing lock files invites races)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan.atomic import NotRegular, atomic_write, open_regular, read_regular
from gan.config.values import run_name
from gan.errors import GanError
from gan.runs.guard import check_files, check_folders, remove_leftovers


@dataclass(frozen=True)
class RunPaths:
    workdir: Path
    name: str

    @property
    def checkpoints(self) -> Path:
        return self.workdir / "checkpoints" / self.name

    @property
    def last(self) -> Path:
        return self.workdir / "checkpoints" / "last.pt"

    @property
    def run_last(self) -> Path:
        """This run's newest checkpoint (`last` is the newest of any run in the workdir)."""
        return self.checkpoints / "last.pt"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs" / self.name

    @property
    def assets(self) -> Path:
        return self.workdir / "assets" / self.name

    def write_run_json(self, payload: dict[str, Any]) -> Path:
        return atomic_write(self.logs / "run.json", json.dumps(payload, indent=2) + "\n")

    def write_config_toml(self, text: str) -> Path:
        """The resolved options: `gan train --config` of this file trains the run again."""
        return atomic_write(self.logs / "config.toml", text)


LOCK = ".lock"


class RunLock:
    """An exclusive lock on one run, for one trainer at a time."""

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self.fd: int | None = None

    @property
    def path(self) -> Path:
        return self.paths.logs / LOCK

    def acquire(self, record: bool = True) -> RunLock:
        """Hold the lock; `record`: write who holds it now (else: `record_holder` later,
        once the run is known to be this one's, so a refused run writes nothing)."""
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        fd = open_regular(self.path, os.O_RDWR | os.O_CREAT, alone=True)
        for attempt in range(20):  # `gan runs` may hold a shared probe for a moment
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 19:
                    holder = lock_holder(self.paths.logs)
                    os.close(fd)
                    raise GanError(
                        f"Run {self.paths.name!r} is being trained by another process{holder}; "
                        "wait for it to finish or stop it, or choose another --run-name."
                    ) from None
                time.sleep(0.05)
        self.fd = fd
        if record:
            self.record_holder()
        return self

    def record_holder(self) -> None:
        """Write who holds the lock into it."""
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.write(self.fd, f"{os.getpid()} {socket.gethostname()}\n".encode())

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(logs: Path) -> bool:
    """Whether a live process trains the run of this logs folder (a shared, non-blocking probe)."""
    try:
        fd = open_regular(logs / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def lock_holder(logs: Path) -> str:
    """' (pid N on HOST)' from the lock file, or '' when it says nothing readable."""
    try:
        pid, host = read_regular(logs / LOCK, 4096).decode().split()[:2]
    except (OSError, ValueError):
        return ""
    return f" (pid {pid} on {host})"


def has_outputs(paths: RunPaths) -> bool:
    """Whether a run of this name has trained here: a history or a checkpoint."""
    logs = ("history.jsonl", "run.json")
    if any((paths.logs / name).exists() for name in logs):
        return True
    return any(paths.checkpoints.glob("step-*.pt")) or any(
        (paths.checkpoints / name).exists() for name in ("last.pt", "best.pt")
    )


def default_run_name(dataset: str, model: str) -> str:
    return f"{dataset}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run(
    workdir: str, run_name: str | None, dataset: str, model: str, resume: bool = False
) -> tuple[RunPaths, RunLock]:
    """Lock the run and create its folders; refuse to overwrite an earlier run's outputs
    unless resuming. The caller releases the lock when training ends."""
    root = Path(os.path.expanduser(workdir))
    if root.exists() and not root.is_dir():
        raise GanError(f"--workdir {root} is a file; give a folder.")
    name = run_name or default_run_name(dataset, model)
    paths = RunPaths(root, name)
    if run_name is None:
        suffix = 1
        while any(os.path.lexists(p) for p in (paths.logs, paths.checkpoints, paths.assets)):
            suffix += 1
            paths = RunPaths(root, f"{name}-{suffix}")
    folders = (paths.checkpoints, paths.logs, paths.assets)
    check_folders(root, folders)  # before anything is created or opened in them
    check_files(paths.logs)
    try:
        lock = RunLock(paths).acquire(record=False)
    except NotRegular as exc:  # planted between the check and the open
        raise GanError(
            f"{exc.filename} is not a regular file of this run alone ({exc.strerror}); move "
            "it away and try again (nothing was changed)."
        ) from None
    except OSError as exc:
        raise _unwritable(exc, root) from None
    try:
        _prepare_folders(paths, root, run_name, resume)
        lock.record_holder()
    except BaseException:
        lock.release()
        raise
    return paths, lock


def _unwritable(exc: OSError, root: Path) -> GanError:
    return GanError(
        f"Cannot write to {exc.filename or root} ({exc.strerror or exc}); "
        "choose a writable --workdir."
    )


def _prepare_folders(paths: RunPaths, root: Path, run_name: str | None, resume: bool) -> None:
    if run_name is not None and not resume and has_outputs(paths):
        raise GanError(
            f"Run {paths.name!r} already has outputs in {root}; choose another --run-name or "
            "continue it with --resume auto (nothing was overwritten)."
        )
    folders = (paths.checkpoints, paths.logs, paths.assets)
    remove_leftovers(paths.name, root, folders)  # this run's lock is held: none is writing
    try:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-test-{os.getpid()}"  # created anew, never opened
            probe.unlink(missing_ok=True)
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW))
            probe.unlink()
    except OSError as exc:
        raise _unwritable(exc, root) from None


def run_paths_for(checkpoint: Path, state: dict[str, Any]) -> RunPaths | None:
    """The run a checkpoint belongs to, from where it lies: `W/checkpoints/<run>/*.pt` is
    run <run> whatever name it stores (a copied run is its copy), and
    `W/checkpoints/last.pt` the run whose name it stores. None for a checkpoint kept
    elsewhere (a copied file, or one set aside into abandoned-*/)."""
    given = Path(os.path.expanduser(str(checkpoint)))
    for path in (given, given.absolute()):  # relative where the path given allows it
        folder = path.parent
        if folder.parent.name == "checkpoints" and _valid_name(folder.name):
            return RunPaths(folder.parent.parent, folder.name)
        if folder.name == "checkpoints" and _valid_name(state.get("run_name")):
            return RunPaths(folder.parent, state["run_name"])
    return None


def _valid_name(name: Any) -> bool:
    try:
        run_name(name)
    except ValueError:
        return False
    return True
