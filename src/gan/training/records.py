"""What a run records about itself: run.json and config.toml in logs/<run>/, and what its
trackers are told at the start and end of each session (the resolved configuration as
sections, flat options and config.toml, with tags; how it ended)."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan import __version__
from gan.config import FIELDS, Config
from gan.config.file import config_toml
from gan.config.sections import OUTPUTS, S3
from gan.config.tracking import TRACK
from gan.runs.folders import RunPaths
from gan.runs.tracking import RunEnd, RunStart
from gan.training import plan as plans
from gan.training.loop import Trainer

# Where outputs go, how data is fetched and where it is tracked: not what tells one run's
# results from another's.
LEFT_OUT = (OUTPUTS, S3, TRACK)


def write_run_records(
    paths: RunPaths,
    plan: plans.Plan,
    header: dict[str, Any],
    trainer: Trainer,
    resumed: Path | None,
    init_from: dict[str, Any] | None = None,
) -> None:
    """config.toml (`gan train --config` of it trains the run again) and run.json: the
    resolved options, which step of the plan set each, the model and data (`header`), the
    runtime, the schedule, the versions; and the checkpoint --init-from started the run from
    (`init_from`: its path and SHA-256)."""
    config, schedule, rt = plan.config, trainer.schedule, trainer.parts.runtime
    paths.write_config_toml(config_toml(config))
    paths.write_run_json(
        {
            **config.to_dict(),
            **header,
            "run_name": paths.name,
            "sources": plan.recorded(),  # flag, config file, dataset default, ...
            "device": str(rt.device),
            "speed": rt.speed.to_dict(),  # precision, layout and compile as resolved
            "data_on_device": trainer.parts.draws.batches.resident,
            "total_steps": schedule.total,
            "time_budget": schedule.fitted,  # the warm-up's measurements and plan
            "schedule": schedule.to_dict(),
            "images_per_step": schedule.images_per_step,
            "world_size": rt.dist.world_size,
            "global_batch": schedule.images_per_step,
            "resumed_from": str(resumed) if resumed else None,
            "resumed_at_step": trainer.step if resumed else None,
            "init_from": init_from,
            "versions": {
                "gan": __version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )


def record_early_stop(paths: RunPaths, plan: plans.Plan, step: int) -> None:
    """A run stopped by its time limit or a signal: config.toml now trains it to this step,
    with the same planned length (so that schedules that follow it, ADA's ramp, match)."""
    paths.write_config_toml(config_toml(plans.stopped_at(plan.config, step)))
    logger.info("{} records the run up to step {} (stop_at).", paths.logs / "config.toml", step)


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
    """What the trackers are told at the start of a session (new or resumed)."""
    tags = {"dataset": config.data.name, "model": config.model.name, "run": name}
    workdir = Path(config.train.workdir).expanduser()
    params, text = hparam_values(config), config_toml(config)
    return RunStart(name, logs, workdir, step, config.to_dict(), params, text, tags)


def run_end(trainer: Trainer | None, status: str, seconds: float, last: Path | None) -> RunEnd:
    """What they are told at its end, however it ended; `trainer` None: it never started."""
    if trainer is None:
        return RunEnd(status, 0, 0, None, None, seconds, None)
    reporter, total = trainer.parts.reporter, trainer.schedule.total
    checkpoint = last if last is not None and last.is_file() else None
    best, latest = reporter.best_fid, reporter.last_fid
    return RunEnd(status, trainer.step, total, best, latest, seconds, checkpoint)
