"""Setting a run's files aside instead of overwriting them.

A run resumed from an earlier step than its newest checkpoint starts a second timeline.
Its files from after that step (step checkpoints, best.pt and last.pt when they are newer,
`gan export`'s generator-<step>.* files and their JSON, eval reports, grids, and a copy of
the history) move into `abandoned-<time>/` folders of
the run's checkpoints/, logs/ and assets/, so `--resume auto` follows the new timeline and
nothing is deleted. A run started again under the same name (`--resume auto-or-new` where
the run has outputs but no checkpoint) sets all its earlier files aside the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from loguru import logger

from gan.checkpoint import STEP_FILE, load_checkpoint
from gan.errors import GanError
from gan.runs.folders import LOCK, RunPaths

ABANDONED = "abandoned-"
# step-0000060.pt, samples-12345678.png, generator-0000060.onnx.json, ...: steps are written
# with 7 digits or more (`{step:07d}`)
_STEP_IN_NAME = re.compile(r"-(\d{7,})(?=[.-]|$)")
_ALIASES = ("last.pt", "best.pt")


def file_step(name: str) -> int | None:
    """The step a run's file is of, from its name; None for files of the whole run."""
    match = STEP_FILE.match(name) or _STEP_IN_NAME.search(name)
    return int(match[1]) if match else None


def _alias_step(path: Path) -> int | None:
    """The step of last.pt or best.pt (None when it does not load: it is set aside too)."""
    try:
        return int(load_checkpoint(path)["step"])
    except GanError:
        return None


def newer_checkpoints(paths: RunPaths, step: int) -> list[Path]:
    """The files of the run's checkpoints/ from after `step`: step checkpoints, last.pt
    and best.pt (also when they no longer load) and exports of a later step."""
    folder = paths.checkpoints
    if not folder.is_dir():
        return []
    newer = []
    for path in sorted(folder.iterdir()):
        if path.name in _ALIASES and path.is_file():
            alias = _alias_step(path)
            if alias is None or alias > step:
                newer.append(path)
        elif path.name.startswith((ABANDONED, ".")):
            continue
        elif (file_step(path.name) or 0) > step:
            newer.append(path)
    return newer


def _unique(folder: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = folder / f"{ABANDONED}{stamp}", 1
    while os.path.lexists(target):
        n += 1
        target = folder / f"{ABANDONED}{stamp}-{n}"
    return target


def _plan(paths: RunPaths, step: int, start_over: bool) -> dict[Path, list[Path]]:
    """For each of the run's folders, the files that leave it (all of them to start over)."""
    moves: dict[Path, list[Path]] = {paths.checkpoints: newer_checkpoints(paths, step)}
    for folder in (paths.logs, paths.assets):
        if folder.is_dir():
            moves[folder] = [
                p
                for p in sorted(folder.iterdir())
                if p.name != LOCK
                and not p.name.startswith((ABANDONED, "."))
                and (start_over or (file_step(p.name) or 0) > step)
            ]
    keep_history = not start_over and (paths.logs / "history.jsonl").is_file()
    return {f: files for f, files in moves.items() if files or (keep_history and f == paths.logs)}


def set_aside(paths: RunPaths, step: int, start_over: bool = False) -> list[Path]:
    """Move the run's files from after `step` into abandoned-<time>/ folders; returns
    those folders. Without `start_over`, nothing moves unless a newer checkpoint exists
    (a run that died after its last checkpoint simply goes on from it)."""
    if not start_over and not newer_checkpoints(paths, step):
        return []
    moves = _plan(paths, step, start_over)
    created = []
    for folder, files in moves.items():
        target = _unique(folder)
        target.mkdir()
        history = folder / "history.jsonl"
        if folder == paths.logs and history.is_file() and history not in files:
            shutil.copy2(history, target / history.name)  # the old timeline's records
        for path in files:
            os.replace(path, target / path.name)
        created.append(target)
    if created:
        where = ", ".join(str(p) for p in created)
        what = "its earlier files" if start_over else f"the files from after step {step}"
        logger.warning(
            "Run {!r}: moved {} aside into {}; nothing was deleted.", paths.name, what, where
        )
    return created
