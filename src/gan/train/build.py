"""Assembling a run: models, runtime, batch stream and loop components; its records."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan import __version__, distributed, speed
from gan.config import Config
from gan.config.file import config_toml
from gan.data import ImageData
from gan.devices import describe
from gan.models import build_models
from gan.runs.folders import RunPaths
from gan.runs.tracking import RunTracker
from gan.train.batches import DeviceBatches
from gan.train.checkpointer import Checkpointer
from gan.train.grids import GridWriter
from gan.train.loop import Trainer, images_per_step
from gan.train.recipe import Recipe, build_recipe
from gan.train.reporter import Reporter
from gan.train.runtime import Runtime, build_runtime


def _log_setup(
    data: ImageData,
    device: torch.device,
    paths: RunPaths | None,
    info: distributed.DistInfo,
    settings: speed.Speed,
) -> None:
    if paths is not None:
        logger.info("Run {}: outputs in {}", paths.name, paths.workdir.resolve())
    procs = f"; {info.world_size} processes" if info.active else ""
    logger.info("Device: {}{}; {}", describe(device), procs, speed.describe(settings))
    size = "x".join(map(str, data.images.shape[1:]))
    logger.info("Data: {} images of {} from {}", len(data.images), size, data.source)


def build_trainer(
    config: Config,
    data: ImageData,
    device: torch.device,
    paths: RunPaths | None,
    tracker: RunTracker | None,
    info: distributed.DistInfo,
    settings: speed.Speed,
) -> Trainer:
    """The runtime, the batch stream and the components of this run's loop."""
    _log_setup(data, device, paths, info, settings)
    m, o, t = config.model, config.optim, config.train
    image_shape = tuple(data.images.shape[1:])
    classes = len(data.classes) if m.conditional else 0
    generator, discriminator = build_models(m.name, image_shape, m.latent_dim, classes)
    if classes:  # unlabelled samples follow the data's class frequencies
        counts = torch.tensor(list(data.class_counts().values()), dtype=torch.float32)
        generator.class_weights.copy_(counts)
    runtime = build_runtime(
        generator,
        discriminator,
        device,
        lr=(o.lr_g, o.lr_d),
        betas=(o.beta1, o.beta2),
        ema_decay=t.ema_decay,
        settings=settings,
        dist=info,
        sync_bn=t.sync_bn,
        spectral_norm=m.spectral_norm,
        compile_d=not (o.r1_gamma > 0 or o.loss == "wgan-gp"),  # no double backward compiled
    )
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    labels = data.labels if classes else None
    batches = DeviceBatches(
        data.images, device, o.batch_size, t.seed, info.rank, info.world_size, fmt, labels=labels
    )
    if not batches.resident:
        logger.info("The images do not fit on {}: streaming them from pinned host memory.", device)
    recipe = build_recipe(
        o.loss,
        device=device,
        seed=t.seed,
        augment=tuple(o.augment.split(",")) if o.augment != "none" else (),
        augment_p=o.augment_p,
        ada_target=o.ada_target,
        r1_gamma=o.r1_gamma,
        r1_every=o.r1_every,
        gp_weight=o.gp_weight,
        n_critic=o.n_critic,
        dist=info,
    )
    components = _components(config, data, runtime, recipe, paths, tracker)
    trainer = Trainer(config, runtime, batches, recipe=recipe, **components)
    logger.info(
        "Model {}: G {:,} parameters, D {:,}; {} steps of {} images (batch {} x {} x {} proc)",
        m.name,
        _count(generator),
        _count(discriminator),
        trainer.total_steps(),
        trainer.images_per_step,
        o.batch_size,
        o.accumulation_steps,
        info.world_size,
    )
    return trainer


def _components(
    config: Config,
    data: ImageData,
    runtime: Runtime,
    recipe: Recipe,
    paths: RunPaths | None,
    tracker: RunTracker | None,
) -> dict[str, Any]:
    """The checkpointer, reporter and grid writer; only rank 0's write files."""
    m, t, info = config.model, config.train, runtime.dist
    image_shape = tuple(data.images.shape[1:])
    model = {"name": m.name, "image_shape": list(image_shape), "latent_dim": m.latent_dim}
    if m.conditional:
        model["classes"] = list(data.classes)
    header = {"model": model, "dataset": data.summary()}
    per_step = images_per_step(config, info.world_size, recipe.n_critic)
    evaluator = _evaluator(config, data, runtime.device, info)
    return {
        "checkpointer": Checkpointer(t.checkpoint_every, t.keep_checkpoints, paths, header),
        "reporter": Reporter(
            per_step,
            t.log_every,
            tracker,
            evaluator,
            t.eval_every,
            info,
            recipe.loss.shown,
        ),
        "grids": GridWriter(
            t.sample_every,
            t.seed,
            image_shape,
            runtime.G.latent_shape,
            runtime.device,
            paths,
            tracker,
            info.is_main,
            getattr(runtime.G, "num_classes", 0),
        ),
    }


def _evaluator(config: Config, data: ImageData, device: torch.device, info: distributed.DistInfo):
    """FID during training (--eval-every), on rank 0."""
    t = config.train
    if not t.eval_every or not info.is_main:
        return None
    from gan.metrics.evaluate import Evaluator

    evaluator = Evaluator(data.images, t.eval_features, None, t.eval_samples, device)
    logger.info("FID every {} steps with {} features", t.eval_every, evaluator.name)
    return evaluator


def write_run_records(
    paths: RunPaths, config: Config, trainer: Trainer, resumed: Path | None
) -> None:
    config = config.replace({"train.run_name": paths.name})
    paths.write_config_toml(config_toml(config))  # `gan train --config` of it trains it again
    rt = trainer.runtime
    paths.write_run_json(
        {
            **config.to_dict(),
            **trainer.checkpointer.header,
            "run_name": paths.name,
            "device": str(rt.device),
            "speed": rt.speed.to_dict(),  # precision, layout and compile as resolved
            "data_on_device": trainer.batches.resident,
            "total_steps": trainer.total_steps(),
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


def record_early_stop(paths: RunPaths, config: Config, step: int) -> None:
    """A run stopped by its time limit or a signal: config.toml now trains it to this step,
    with the same planned length (so that schedules that follow it, ADA's ramp, match)."""
    stopped = config.replace(
        {"train.run_name": paths.name, "train.stop_at": step, "train.time_limit": None}
    )
    paths.write_config_toml(config_toml(stopped))
    logger.info("{} records the run up to step {} (stop_at).", paths.logs / "config.toml", step)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
