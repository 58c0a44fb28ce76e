"""What a run's folders must be before a trainer writes into them, and the leftovers of
writes a killed process never finished.

A run's folders may come from a tarball or a shared workdir. Before anything is touched,
each of `checkpoints/<run>`, `logs/<run>` and `assets/<run>` must be a real folder inside
the workdir (not a link, not leading elsewhere), and each of the run's own file names
must be a regular file or absent; files written in place (the lock, the history, the
log) must also have no other hard link, since writing them would change that file too.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from loguru import logger

from gan.atomic import TEMP_FILE
from gan.errors import GanError

IN_PLACE = (".lock", "history.jsonl", "train.log")  # appended or rewritten in place
WHOLE = ("status.json", "run.json", "config.toml", "trackers.json")  # written by rename


def inside(workdir: Path, folder: Path) -> bool:
    """Whether `folder` is no link and, resolved, lies in the workdir (absent or not)."""
    try:
        return not folder.is_symlink() and folder.resolve().is_relative_to(workdir.resolve())
    except (OSError, RuntimeError):  # RuntimeError: a loop of links
        return False


def check_folders(
    workdir: Path, folders: tuple[Path, ...], other: str = "choose another --run-name"
) -> None:
    """Refuse a run folder that is a link or resolves outside the workdir (`other`: what
    else the user can do)."""
    try:
        workdir.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a loop of links
        raise GanError(f"--workdir {workdir} cannot be resolved ({exc}); give a folder.") from None
    for folder in folders:
        if not inside(workdir, folder):
            raise GanError(
                f"Run folder {folder} is a link or leads outside {workdir}; put a real folder "
                f"there or {other} (nothing was changed)."
            )


def _kind(mode: int, links: int) -> str | None:
    """What a run file is, when it is not a plain regular file; None when it is."""
    kinds = {stat.S_ISLNK: "a link", stat.S_ISFIFO: "a FIFO", stat.S_ISDIR: "a folder"}
    for test, kind in kinds.items():
        if test(mode):
            return kind
    if not stat.S_ISREG(mode):
        return "a device or socket"
    return "a file with other hard links" if links > 1 else None


def check_files(logs: Path) -> None:
    """Refuse a run whose own file names in `logs` hold something gan must not write."""
    for name in (*IN_PLACE, *WHOLE):
        path = logs / name
        try:
            info = path.lstat()
        except OSError:  # absent (or logs/<run> is no folder: creating it says so)
            continue
        kind = _kind(info.st_mode, info.st_nlink if name in IN_PLACE else 1)
        if kind is not None:
            raise GanError(
                f"{path} is {kind}, not the run's own file; move it away and try again "
                "(nothing was changed)."
            )


def check_tree(
    workdir: Path, root: Path, what: str, own_links: tuple[str, ...] | None = None
) -> None:
    """Refuse a folder a tracker writes into in place (`what` says which, in the sentence)
    that is a link or leads outside the workdir, or holds anywhere in it a link, a FIFO, a
    device or a file with other hard links: the tracker would write through them. With
    `own_links`, only `root`'s own entries are checked, and links of those names, which
    the tracker itself makes and replaces, pass (W&B: a folder of its own each session,
    links of its own inside the old ones). Walked without recursion; absent passes."""
    from gan.walk import Walk

    if not os.path.lexists(root):
        return
    found = (
        None
        if inside(workdir, root) and root.is_dir()
        else (root, "a link, or no folder of the workdir,")
    )
    walk = Walk(root, max_depth=None if own_links is None else 0)
    for folder, entries in walk if found is None else ():
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            kind = None if stat.S_ISDIR(info.st_mode) else _kind(info.st_mode, info.st_nlink)
            if kind == "a link" and entry.name in (own_links or ()):
                continue
            if kind is not None:
                found = (folder / entry.name, kind)
                break
        if found is not None:
            break
    if found is not None:
        where = f"{root} ({what})" if found[0] == root else f"{found[0]} in {what}"
        raise GanError(
            f"{where} is {found[1]} that gan would write through; move it away and try "
            "again, so nothing was trained."
        )


def _alive(pid: int, thread: int) -> bool:
    """Whether the writer a temporary name names may still be writing it (this process:
    the thread still runs; another: the process exists here)."""
    if pid == os.getpid():
        return thread in {t.ident for t in threading.enumerate()}
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OverflowError, ValueError, OSError):
        return False
    return True


def _remove_temps(folder: Path, only: str | None = None) -> int:
    """Remove `gan.atomic.temp_name` files in `folder` whose writer is gone (of `only` when
    given); returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = TEMP_FILE.match(entry.name)
        if match is None or (only is not None and match["name"] != only):
            continue
        if entry.is_dir(follow_symlinks=False) or _alive(int(match["pid"]), int(match["thread"])):
            continue
        try:
            os.unlink(entry.path)
            removed += 1
        except OSError:
            continue
    return removed


def remove_leftovers(name: str, workdir: Path, folders: tuple[Path, ...]) -> int:
    """Temporary files that killed writes of this run left in its folders, and of the
    workdir's checkpoints/last.pt (which every run publishes) whose writer is gone. The
    caller holds the run's lock, so no trainer of this run writes them now; a live
    `gan export` or `gan evaluate` writing beside it keeps its own."""
    removed = sum(_remove_temps(folder) for folder in folders)
    removed += _remove_temps(workdir / "checkpoints", only="last.pt")
    if removed:
        logger.info(
            "Removed {} temporary file(s) left by interrupted writes of run {!r}.", removed, name
        )
    return removed
