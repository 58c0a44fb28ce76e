"""Finding the checkpoint to resume from and reconciling its config with the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loguru import logger

from gan.checkpoint import load_checkpoint, step_files
from gan.config import FIELDS, Config
from gan.errors import GanError


def _newest_valid(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest step checkpoint of a run that loads; corrupt newer ones are reported."""
    for _, path in reversed(step_files(run_dir)):
        try:
            return path, load_checkpoint(path)
        except GanError as exc:
            logger.warning("Skipping {}: {}", path.name, exc)
    return None


RESUME_MODES = ("auto", "auto-or-new")


def find_resume(
    workdir: Path, run_name: str | None, resume: str
) -> tuple[Path, dict[str, Any]] | None:
    """`auto`: newest valid checkpoint of --run-name, or of the newest run, else an error
    that names the runs there are; `auto-or-new`: the same, or None (a new run); else a path."""
    if resume not in RESUME_MODES:
        path = Path(resume).expanduser()
        return path, load_checkpoint(path)
    root = workdir / "checkpoints"
    runs = [d for d in root.iterdir() if d.is_dir() and step_files(d)] if root.is_dir() else []
    if run_name is not None:
        found = _newest_valid(root / run_name)
    else:
        runs.sort(key=lambda d: step_files(d)[-1][1].stat().st_mtime, reverse=True)
        found = next(filter(None, map(_newest_valid, runs)), None)
    if found is None and resume == "auto":
        raise GanError(_nothing_to_resume(root, run_name, sorted(d.name for d in runs)))
    return found


def _nothing_to_resume(root: Path, run_name: str | None, runs: list[str]) -> str:
    what = f"run {run_name!r}" if run_name else "any run"
    if run_name and run_name in runs:
        return (
            f"No checkpoint of run {run_name!r} in {root} loads (see the warnings above); "
            "resume from a checkpoint path, or start anew with another --run-name."
        )
    there = f"the runs there are: {', '.join(runs)}" if runs else "there are none"
    return (
        f"--resume auto found no checkpoint of {what} in {root} ({there}); check --run-name "
        "and --workdir, or use --resume auto-or-new to start a new run when there is none."
    )


def merge_for_resume(saved: Config, given: Config, chosen: set[str]) -> Config:
    """The checkpoint's config with the options the user chose (`section.field` keys) applied.

    Options that define the run (`fixed` in their declaration) must match the checkpoint;
    the rest (step budget, intervals, learning rates, device, data location) may change.
    """
    for key in sorted(chosen):
        f = FIELDS[key]
        old, new = saved.get(key), given.get(key)
        old, new = (tuple(v) if isinstance(v, list) else v for v in (old, new))
        if f.opt.fixed and new != old:
            raise GanError(
                f"{f.flag} {_show(new)} differs from the checkpoint's {_show(old)}; a resumed "
                f"run must keep it (drop {f.flag}, or start a new run with another --run-name)."
            )
    return saved.replace({key: given.get(key) for key in chosen})


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)
