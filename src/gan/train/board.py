"""What the trackers are told of a run beyond its step scalars and grids: at the start of
each session the resolved configuration (as sections, as flat options and as config.toml)
with tags, and at its end how it ended (`gan.runs.tracking.RunStart`, `RunEnd`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gan.config import FIELDS, Config
from gan.config.file import config_toml
from gan.config.sections import OUTPUTS, S3
from gan.config.tracking import TRACK
from gan.runs.tracking import RunEnd, RunStart

# Where outputs go, how data is fetched and where it is tracked: not what tells one run's
# results from another's.
LEFT_OUT = (OUTPUTS, S3, TRACK)


def hparam_values(config: Config) -> dict[str, Any]:
    """The run's options, flattened to `section.field`, as the types hparams takes."""
    values = {}
    for key, field in FIELDS.items():
        if field.opt.panel in LEFT_OUT or key == "data.download":
            continue
        value = config.get(key)
        if isinstance(value, bool | int | float | str):
            values[key] = value
        elif value is None:
            values[key] = "none"
        else:  # tuples: image size, filters, split fractions
            values[key] = ",".join(map(str, value))
    return values


def run_start(config: Config, logs: Path, name: str, step: int) -> RunStart:
    """At the start of a session (new or resumed)."""
    tags = {"dataset": config.data.name, "model": config.model.name, "run": name}
    workdir = Path(config.train.workdir).expanduser()
    params, text = hparam_values(config), config_toml(config)
    return RunStart(name, logs, workdir, step, config.to_dict(), params, text, tags)


def run_end(trainer: Any, status: str, seconds: float, last: Path | None) -> RunEnd:
    """At the end of a session, however it ended; `trainer` None: it never started."""
    if trainer is None:
        return RunEnd(status, 0, 0, None, None, seconds, None)
    r = trainer.reporter
    checkpoint = last if last is not None and last.is_file() else None
    return RunEnd(
        status, trainer.step, trainer.total_steps(), r.best_fid, r.last_fid, seconds, checkpoint
    )
