"""Finding the checkpoint to resume from, and the run it goes on as. (Merging its config
with the options given is a step of the plan, `gan.training.plan.resumed_options`.)"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from gan.checkpoint import load_checkpoint, step_files
from gan.errors import GanError
from gan.runs.folders import RunPaths, default_run_name, has_outputs, run_paths_for

RESUME_MODES = ("auto", "auto-or-new")
_ALIASES = ("last.pt", "best.pt")


@dataclass(frozen=True)
class Found:
    """A checkpoint to resume from, its state, and the run whose folder holds it (None for
    a file kept elsewhere)."""

    path: Path
    state: dict[str, Any]
    run: RunPaths | None


def candidates(run_dir: Path, skip: Collection[Path] = ()) -> list[Path]:
    """The checkpoints a run could resume from, in order: its step files newest first,
    then its last.pt and best.pt (less those in `skip`: they loaded but did not fit)."""
    steps = [path for _, path in reversed(step_files(run_dir))]
    every = steps + [run_dir / n for n in _ALIASES if (run_dir / n).is_file()]
    return [path for path in every if path not in skip]


def _newest_valid(run_dir: Path, skip: Collection[Path]) -> tuple[Path, dict[str, Any]] | None:
    """The first candidate that loads; the ones that do not are reported, whatever made
    them fail (a sentence, or anything a damaged file provoked: a MemoryError, a
    RecursionError), so that an older checkpoint is tried."""
    for path in candidates(run_dir, skip):
        try:
            return path, load_checkpoint(path)
        except GanError as exc:
            logger.warning("Skipping {}: {}", path.name, exc)
        except Exception as exc:  # noqa: BLE001 - one damaged file must not stop the resume
            text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
            reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            logger.warning("Skipping {}: it could not be loaded ({}).", path.name, reason)
    return None


def find_resume(
    workdir: Path, run_name: str | None, resume: str, skip: Collection[Path] = ()
) -> Found | None:
    """`auto`: the newest checkpoint that loads of --run-name, or of the newest run, else an
    error that names the runs there are; `auto-or-new`: the same, or None (a new run) where
    the run has no checkpoint at all; else a checkpoint path. A run whose checkpoints all
    fail to load is an error in both modes: starting it again would overwrite it. `skip`:
    checkpoints that loaded but did not fit the run (tried again, they would fail again)."""
    if resume not in RESUME_MODES:
        path = Path(resume).expanduser()
        state = load_checkpoint(path)
        return Found(path, state, run_paths_for(path, state))
    root = workdir / "checkpoints"
    runs = [d for d in root.iterdir() if d.is_dir() and candidates(d)] if root.is_dir() else []
    if run_name is not None:
        run_dir: Path | None = root / run_name
    else:
        run_dir = max(runs, key=_newest_mtime, default=None)
    if run_dir is None or not candidates(run_dir):
        if resume == "auto":
            raise GanError(_nothing_to_resume(root, run_name, sorted(d.name for d in runs)))
        return None
    found = _newest_valid(run_dir, [Path(p) for p in skip])
    if found is None:
        names = [p.name for p in candidates(run_dir)]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise GanError(
            f"No checkpoint of run {run_dir.name!r} in {root} loads ({shown}; see the warnings "
            "above); resume from a checkpoint path, move the broken files out of "
            f"{run_dir} to start the run again, or start anew with another --run-name."
        )
    return Found(*found, RunPaths(workdir, run_dir.name))


def _newest_mtime(run_dir: Path) -> float:
    return max(p.stat().st_mtime for p in candidates(run_dir))


def _nothing_to_resume(root: Path, run_name: str | None, runs: list[str]) -> str:
    what = f"run {run_name!r}" if run_name else "any run"
    there = f"the runs there are: {', '.join(runs)}" if runs else "there are none"
    return (
        f"--resume auto found no checkpoint of {what} in {root} ({there}); check --run-name "
        "and --workdir, or use --resume auto-or-new to start a new run when there is none."
    )


def resume_target(found: Found, workdir: str | None, run_name: str | None) -> RunPaths:
    """Where a resumed run goes on: --workdir and --run-name where given, else the run whose
    folder holds the checkpoint (named by its folder, not by the name stored inside), else
    the stored name in the current folder. Never a path stored in the checkpoint."""
    lies = found.run
    root = Path(workdir).expanduser() if workdir is not None else None
    root = root or (lies.workdir if lies is not None else Path("."))
    stored = found.state.get("run_name")
    name = (
        run_name
        or (lies.name if lies is not None else stored)
        or default_run_name(
            str(found.state["config"].get("data", {}).get("name", "run")),
            str(found.state["model"]["name"]),
        )
    )
    target = RunPaths(root, name)
    own = is_own(found, target)
    if not own and has_outputs(target):
        raise GanError(
            f"Run {name!r} already has outputs in {root} and {found.path} is not one of its "
            "checkpoints; resume it with --resume auto, or give a new --run-name to continue "
            "this checkpoint as a new run (nothing was changed)."
        )
    if stored and stored != name:
        logger.info("{} was saved by run {!r}; it goes on as run {!r}.", found.path, stored, name)
    return target


def is_own(found: Found, target: RunPaths) -> bool:
    """Whether the checkpoint lies in the folder of the run it goes on as (its own run's
    file, not one handed over from elsewhere)."""
    return found.run is not None and _same_folder(found.run.checkpoints, target.checkpoints)


def in_workdir(found: Found, target: RunPaths) -> bool:
    """Whether the checkpoint lies in a run folder of the workdir the run goes on in (one
    of the user's own runs there, not a file handed over from elsewhere)."""
    return found.run is not None and _same_folder(
        found.run.workdir / "checkpoints", target.workdir / "checkpoints"
    )


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
