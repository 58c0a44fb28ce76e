"""What a run writes about itself into logs/<run>/: run.json and config.toml."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch
from loguru import logger

from gan import __version__
from gan.config.file import config_toml
from gan.runs.folders import RunPaths
from gan.train import plan as plans
from gan.train.loop import Trainer


def write_run_records(
    paths: RunPaths, plan: plans.Plan, trainer: Trainer, resumed: Path | None
) -> None:
    """config.toml (`gan train --config` of it trains the run again) and run.json: the
    resolved options, which step of the plan set each, the runtime, the versions."""
    config = plan.config
    paths.write_config_toml(config_toml(config))
    rt = trainer.runtime
    paths.write_run_json(
        {
            **config.to_dict(),
            **trainer.checkpointer.header,
            "run_name": paths.name,
            "sources": plan.recorded(),  # flag, config file, dataset default, ...
            "device": str(rt.device),
            "speed": rt.speed.to_dict(),  # precision, layout and compile as resolved
            "data_on_device": trainer.batches.resident,
            "total_steps": trainer.total_steps(),
            "time_budget": trainer.budget,  # the warm-up's measurements and plan
            "images_per_step": trainer.images_per_step,
            "world_size": rt.dist.world_size,
            "global_batch": trainer.images_per_step,
            "resumed_from": str(resumed) if resumed else None,
            "resumed_at_step": trainer.step if resumed else None,
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
