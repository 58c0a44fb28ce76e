"""What TensorBoard shows of a run beyond its step scalars and grids: the resolved
configuration as text, and the HParams dashboard's record (options beside best and last
FID), whose metrics are written again whenever the run ends, however it ends."""

from __future__ import annotations

from typing import Any

from gan.config import FIELDS, Config
from gan.config.file import config_toml
from gan.config.sections import OUTPUTS, S3
from gan.runs.tracking import RunTracker

METRICS = ("hparams/best_fid", "hparams/last_fid", "hparams/steps")


# Where outputs go and how data is fetched: not what tells one run's results from another's.
LEFT_OUT = (OUTPUTS, S3)


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


def describe_run(tracker: RunTracker, config: Config, step: int) -> None:
    """At the start of a session (new or resumed): the configuration text and hparams."""
    tracker.text("config", "```toml\n" + config_toml(config) + "```", step)
    tracker.hparams(hparam_values(config), METRICS)


def record_metrics(tracker: RunTracker, step: int, best: float | None, last: float | None) -> None:
    """The hparams metrics as they stand now (FIDs only once measured)."""
    values = {"hparams/steps": float(step)}
    if best is not None:
        values["hparams/best_fid"] = best
    if last is not None:
        values["hparams/last_fid"] = last
    tracker.scalars(step, values)
