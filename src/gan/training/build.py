"""Building a run before its loop: models, runtime, batch stream, recipe, draws, and the
loop's components, each made from its section of the config, in this one place."""

from __future__ import annotations

from typing import Any

import torch
from loguru import logger

from gan import distributed, speed
from gan.config import Config
from gan.data import ImageData
from gan.devices import describe
from gan.models import build_models
from gan.models.freeze import freeze
from gan.models.growth import levels
from gan.runs.folders import RunPaths
from gan.runs.tracking import Log
from gan.training.batches import DeviceBatches
from gan.training.checkpointer import Checkpointer
from gan.training.draws import Draws
from gan.training.grids import GridWriter
from gan.training.loop import Trainer
from gan.training.parts import Parts, RandomStates
from gan.training.plan import Plan
from gan.training.recipe import Recipe, build_recipe
from gan.training.reporter import Reporter
from gan.training.runtime import Runtime, build_runtime
from gan.training.schedule import Basis, Schedule, images_per_step, resolve


def make_parts(
    config: Config,
    runtime: Runtime,
    batches: DeviceBatches,
    recipe: Recipe | None = None,
    *,
    paths: RunPaths | None = None,
    log: Log | None = None,
    evaluator: Any = None,
    **given: Any,
) -> Parts:
    """The run's parts around its runtime and batches, each made from its config section
    unless `given` ready (`reporter`, `grids`); only rank 0's write files."""
    t, m, rt = config.train, config.model, runtime
    recipe = recipe or build_recipe(device=rt.device, seed=t.seed, dist=rt.dist)
    per_step = images_per_step(config, rt.dist.world_size)
    ema = rt.G_ema.module if rt.G_ema is not None else None
    draws = Draws(
        batches,
        rt.G.latent_shape,
        config.optim.accumulation_steps,
        t.seed,
        rt.dist,
        growing=[rt.G, ema, rt.D] if m.grow else None,
        levels=levels(m.grow_from) if m.grow else 0,
    )
    made = {
        "reporter": lambda: Reporter.from_config(
            t, per_step, log, evaluator, rt.dist, recipe.loss.shown
        ),
        "grids": lambda: GridWriter.from_config(t, tuple(batches.images.shape[1:]), rt, paths, log),
    }
    parts = {name: given.get(name) or make() for name, make in made.items()}
    return Parts(rt, recipe, draws, loop=RandomStates(rt.device, rt.dist), **parts)


def assemble(
    parts: Parts,
    config: Config,
    schedule: Schedule,
    step: int = 0,
    *,
    paths: RunPaths | None = None,
    header: dict[str, Any] | None = None,
) -> Trainer:
    """The loop over `parts` to `schedule`, from `step`, its checkpointer writing `header`
    (the model's and the dataset's descriptions) and the config into every checkpoint."""
    header = {**(header or {}), "config": config.to_dict()}
    keep, device = config.train.keep_checkpoints, parts.runtime.device
    checkpointer = Checkpointer(parts, schedule, keep, paths, header, device)
    return Trainer(parts, schedule, checkpointer, step)


def trainer_of(config: Config, runtime: Runtime, batches: DeviceBatches, **more: Any) -> Trainer:
    """A run's loop from a ready runtime and batch stream, its schedule that of `config`
    (`gan bench` and tests): `more` as `make_parts` takes it."""
    basis = Basis(batches.num_images, runtime.dist.world_size)
    return assemble(make_parts(config, runtime, batches, **more), config, resolve(config, basis))


def build_parts(
    plan: Plan,
    data: ImageData,
    device: torch.device,
    paths: RunPaths | None,
    log: Log | None,
    info: distributed.DistInfo,
    settings: speed.Speed,
) -> tuple[Parts, dict[str, Any]]:
    """The runtime, the batch stream and the parts of this run's loop, for the plan's
    config; and what every checkpoint says of the model and the data."""
    config, schedule = plan.config, plan.schedule
    _log_setup(data, device, paths, info, settings)
    runtime, sizes = _runtime(config, data, device, info, settings)
    o, t = config.optim, config.train
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    labels = data.labels if config.model.conditional else None
    batches = DeviceBatches(
        data.images, device, o.batch_size, t.seed, info.rank, info.world_size, fmt, labels=labels
    )
    if not batches.resident:
        logger.info("The images do not fit on {}: streaming them from pinned host memory.", device)
    recipe = _recipe(config, device, info)
    header = {"model": _model_record(config, data), "dataset": data.summary()}
    evaluator = _evaluator(config, data, device, info)
    parts = make_parts(config, runtime, batches, recipe, paths=paths, log=log, evaluator=evaluator)
    logger.info(
        "Model {}: G {:,} parameters, D {:,}; {} of {} images (batch {} x {} x {} proc)",
        config.model.name,
        *sizes,
        "steps to fill the budget" if schedule.open else f"{schedule.total} steps",
        schedule.images_per_step,
        o.batch_size,
        o.accumulation_steps,
        info.world_size,
    )
    return parts, header


def _log_setup(data, device, paths, info, settings) -> None:
    if paths is not None:
        logger.info("Run {}: outputs in {}", paths.name, paths.workdir.resolve())
    procs = f"; {info.world_size} processes" if info.active else ""
    logger.info("Device: {}{}; {}", describe(device), procs, speed.describe(settings))
    size = "x".join(map(str, data.images.shape[1:]))
    logger.info("Data: {} images of {} from {}", len(data.images), size, data.source)


def _runtime(config: Config, data: ImageData, device, info, settings) -> tuple[Runtime, tuple]:
    """G and D of the model section, on the device, with their optimizers and EMA; and
    their parameter counts."""
    m, o, t = config.model, config.optim, config.train
    classes = len(data.classes) if m.conditional else 0
    grow = levels(m.grow_from) if m.grow else 0
    shape = tuple(data.images.shape[1:])
    generator, discriminator = build_models(m.name, shape, m.latent_dim, classes, grow)
    if classes:  # unlabelled samples follow the data's class frequencies
        counts = torch.tensor(list(data.class_counts().values()), dtype=torch.float32)
        generator.class_weights.copy_(counts)
    sizes = (_count(generator), _count(discriminator))
    if t.freeze_d:  # before the optimizers, DDP and compile see D's parameters
        tensors = freeze(m.name, discriminator, t.freeze_d)
        alone = (
            "" if t.init_from else " (from their initial weights: FreezeD is meant for --init-from)"
        )
        logger.info(
            "FreezeD: D's first {} blocks ({} tensors) get no gradient{}.",
            t.freeze_d,
            tensors,
            alone,
        )
    return build_runtime(
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
    ), sizes


def _recipe(config: Config, device: torch.device, info: distributed.DistInfo) -> Recipe:
    """The loss, penalties and augmentation of the optimizer section."""
    o, t = config.optim, config.train
    return build_recipe(
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


def _model_record(config: Config, data: ImageData) -> dict[str, Any]:
    """What a checkpoint says of its model, so `gan sample` needs no model flags."""
    m = config.model
    model = {"name": m.name, "image_shape": list(data.images.shape[1:]), "latent_dim": m.latent_dim}
    if m.conditional:
        model["classes"] = list(data.classes)
    if m.grow:
        model["grow"] = levels(m.grow_from)
    return model


def _evaluator(config: Config, data: ImageData, device: torch.device, info: distributed.DistInfo):
    """FID during training (--eval-every), on rank 0."""
    t = config.train
    if not t.eval_every or not info.is_main:
        return None
    from gan.metrics.evaluate import Evaluator

    evaluator = Evaluator(data.images, t.eval_features, None, t.eval_samples, device)
    logger.info("FID every {} steps with {} features", t.eval_every, evaluator.name)
    return evaluator


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
