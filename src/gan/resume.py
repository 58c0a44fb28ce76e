"""Finding the checkpoint to resume from and reconciling its config with the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from loguru import logger

from gan.checkpoint import load_checkpoint, step_files
from gan.config import Config
from gan.errors import GanError

# CLI option -> (config section, field)
OPTION_FIELDS = {
    "dataset": ("data", "name"),
    "data": ("data", "source"),
    "image_size": ("data", "image_size"),
    "download": ("data", "download"),
    "model": ("model", "name"),
    "latent_dim": ("model", "latent_dim"),
    "batch_size": ("optim", "batch_size"),
    "accumulation_steps": ("optim", "accumulation_steps"),
    "lr_g": ("optim", "lr_g"),
    "lr_d": ("optim", "lr_d"),
    "epochs": ("train", "epochs"),
    "max_steps": ("train", "max_steps"),
    "time_limit": ("train", "time_limit"),
    "device": ("train", "device"),
    "seed": ("train", "seed"),
    "workdir": ("train", "workdir"),
    "run_name": ("train", "run_name"),
    "checkpoint_every": ("train", "checkpoint_every"),
    "sample_every": ("train", "sample_every"),
    "log_every": ("train", "log_every"),
    "keep_checkpoints": ("train", "keep_checkpoints"),
    "ema_decay": ("train", "ema_decay"),
    "eval_every": ("train", "eval_every"),
    "eval_samples": ("train", "eval_samples"),
    "eval_features": ("train", "eval_features"),
    "precision": ("train", "precision"),
    "channels_last": ("train", "channels_last"),
    "compile": ("train", "compile"),
    **{
        name: ("data", name)
        for name in (
            "no_sign_request",
            "s3_workers",
            "cache_dir",
            "no_cache",
            "particle",
            "dose",
            "hours",
            "split",
            "split_fractions",
            "clip_percentiles",
        )
    },
}
# Options that define what the run is; changing them mid-run would silently make another run.
FIXED_ON_RESUME = (
    "dataset", "image_size", "model", "latent_dim", "batch_size", "accumulation_steps", "seed",
    "ema_decay", "particle", "dose", "hours", "split", "split_fractions", "clip_percentiles",
)  # fmt: skip


def _newest_valid(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest step checkpoint of a run that loads; corrupt newer ones are reported."""
    for _, path in reversed(step_files(run_dir)):
        try:
            return path, load_checkpoint(path)
        except GanError as exc:
            logger.warning("Skipping {}: {}", path.name, exc)
    return None


def find_resume(
    workdir: Path, run_name: str | None, resume: str
) -> tuple[Path, dict[str, Any]] | None:
    """`auto`: newest valid checkpoint of --run-name, or of the newest run; else a path."""
    if resume != "auto":
        path = Path(resume).expanduser()
        return path, load_checkpoint(path)
    root = workdir / "checkpoints"
    if run_name is not None:
        return _newest_valid(root / run_name)
    runs = [d for d in root.iterdir() if d.is_dir() and step_files(d)] if root.is_dir() else []
    runs.sort(key=lambda d: step_files(d)[-1][1].stat().st_mtime, reverse=True)
    for run_dir in runs:
        found = _newest_valid(run_dir)
        if found is not None:
            return found
    return None


def _get(config: Config, option: str) -> Any:
    section, name = OPTION_FIELDS[option]
    return getattr(getattr(config, section), name)


def merge_for_resume(saved: Config, given: Config, explicit: set[str]) -> Config:
    """The checkpoint's config with the options given on this command line applied.

    Options in FIXED_ON_RESUME must match the checkpoint; the rest (step budget, intervals,
    learning rates, device, data location) may change.
    """
    merged = saved
    for option in sorted(explicit & OPTION_FIELDS.keys()):
        old, new = _get(saved, option), _get(given, option)
        if isinstance(old, list):
            old = tuple(old)
        if option in FIXED_ON_RESUME and new != old:
            flag = "--" + option.replace("_", "-")
            raise GanError(
                f"{flag} {_show(new)} differs from the checkpoint's {_show(old)}; a resumed run "
                f"must keep it (drop {flag}, or start a new run with another --run-name)."
            )
        section, name = OPTION_FIELDS[option]
        part = dataclasses.replace(getattr(merged, section), **{name: new})
        merged = dataclasses.replace(merged, **{section: part})
    return merged


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)
