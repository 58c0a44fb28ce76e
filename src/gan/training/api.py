"""`gan.train(...)`, the Python API's way to train: `gan train`'s flags as keywords, merged
over a `Config` or a TOML file as `gan train` merges its flags over `--config`."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from gan.config import FIELDS, Config
from gan.config.file import read_config_file
from gan.config.given import ARGUMENT, FILE, differing, merge
from gan.config.values import shown
from gan.errors import GanError
from gan.training.run import TrainResult
from gan.training.run import train as run


def train(
    config: Config | str | os.PathLike | None = None,
    *,
    resume: str | None = None,
    **options: Any,
) -> TrainResult:
    """Train a run (or continue one with `resume="auto"` or a checkpoint path), as `gan
    train` does, and return its `TrainResult` (`.checkpoint`, `.run`, `.step`, ...).

    `options` are `gan train`'s flags as keywords (`dataset="mri"`, `max_steps=200`,
    `image_size="64x64"`), checked as the command line checks them; they win over
    `config`: a `Config`, or the path of a TOML file as `gan train --config` reads (a
    run's `logs/<run>/config.toml` trains it again). Options left out take the dataset's
    defaults, as on the command line."""
    if not isinstance(config, Config | str | os.PathLike | None):
        raise GanError(f"config={shown(config)} is not a Config or the path of a TOML file.")
    if not isinstance(resume, str | os.PathLike | None):
        raise GanError(f"resume={shown(resume)} is not auto, auto-or-new or a checkpoint path.")
    if isinstance(config, str | os.PathLike):
        below, source = read_config_file(Path(config)), FILE
    else:  # a Config's options, where they differ from the defaults, are arguments too
        below = {key: config.get(key) for key in differing(config)} if config is not None else {}
        source = ARGUMENT
    run_config, chosen = merge(below, _options(options), ARGUMENT, source)
    return run(run_config, None if resume is None else os.fspath(resume), chosen)


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """Keyword options (the flags' names) as checked `section.field` values."""
    by_param = {f.param: f for f in FIELDS.values()}
    values = {}
    for name, value in options.items():
        f = by_param.get(name)
        if f is None:
            close = difflib.get_close_matches(name, by_param, n=1)
            hint = f"did you mean {close[0]}?" if close else "gan train --help lists them"
            raise GanError(f"{name} is not an option of gan train ({hint}).")
        try:
            values[f.key] = f.check(list(value) if f.many and isinstance(value, tuple) else value)
        except ValueError as exc:
            raise GanError(f"{name}: {exc}.") from None
    return values
