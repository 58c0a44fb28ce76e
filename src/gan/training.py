"""`gan train` as a library call: resolve defaults, check, load, build, train (or resume)."""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan import __version__
from gan.config import Config
from gan.data import DATASETS, ImageData, load_dataset
from gan.data.stream import DeviceBatches
from gan.devices import configure_cuda_allocator, describe, release_cached_memory, resolve_device
from gan.errors import GanError
from gan.models import MODELS, build_models, check_model_fits
from gan.outputs import RunPaths, prepare_run
from gan.resume import find_resume, merge_for_resume
from gan.rng import seed_everything
from gan.tracking import RunTracker
from gan.trainer import Trainer


def resolve(config: Config) -> Config:
    """Fill in the dataset's defaults (model, image size, epochs) and validate everything."""
    config.validate()
    spec = DATASETS.get(config.data.name)
    model = config.model.name or spec.default_model
    MODELS.get(model)  # unknown names fail here with the list of valid ones
    epochs = config.train.epochs
    if epochs is None and config.train.max_steps is None:
        epochs = spec.default_epochs
    size = config.data.image_size or spec.default_image_size
    resolved = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, image_size=size),
        model=dataclasses.replace(config.model, name=model),
        train=dataclasses.replace(config.train, epochs=epochs),
    )
    if size is not None:
        channels = spec.channels or 1  # the channel count does not change which sizes fit
        check_model_fits(model, (channels, *size), config.model.latent_dim)
    return resolved


def _check_same_data(data: ImageData, state: dict[str, Any], path: Path) -> None:
    saved = state.get("dataset", {})
    now = data.summary()
    for key in ("num_images", "image_shape"):
        if saved.get(key) is not None and saved[key] != now[key]:
            raise GanError(
                f"The data has {key.replace('_', ' ')} {now[key]} but {path} was trained on "
                f"{saved[key]}; resume with the same data or start a new run."
            )


def train(
    config: Config, resume: str | None = None, explicit: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Train one run end to end (or continue one) and return a summary."""
    state, resumed_from = None, None
    if resume is not None:
        config.validate()
        found = find_resume(Path(config.train.workdir).expanduser(), config.train.run_name, resume)
        if found is None:
            logger.info("No checkpoint to resume from; starting a new run.")
        else:
            resumed_from, state = found
            saved = Config.from_dict(state["config"])
            config = merge_for_resume(saved, config, set(explicit))
            config.train.run_name = state.get("run_name") or config.train.run_name
    config = resolve(config)
    configure_cuda_allocator()
    device = resolve_device(config.train.device)
    seed_everything(config.train.seed)
    data = load_dataset(config.data)
    image_shape = tuple(data.images.shape[1:])
    check_model_fits(config.model.name, image_shape, config.model.latent_dim)
    if state is not None:
        _check_same_data(data, state, resumed_from)
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, image_size=image_shape[1:])
    )
    paths = prepare_run(
        config.train.workdir, config.train.run_name, data.name, config.model.name,
        resume=resume is not None,
    )  # fmt: skip
    step = int(state["step"]) if state is not None else 0
    tracker = RunTracker(paths.logs, resume_step=step)
    try:
        trainer = _build_trainer(config, data, device, paths, tracker)
        if state is not None:
            trainer.load_state_dict(state)
            logger.info("Resumed from {} at step {}", resumed_from, trainer.step)
        _write_run_json(paths, config, trainer, device, resumed_from)
        result = trainer.train()
    finally:
        tracker.close()
        release_cached_memory(device)
    result.update(run=paths.name, paths=paths)
    return result


def _build_trainer(
    config: Config, data: ImageData, device: torch.device, paths: RunPaths, tracker: RunTracker
) -> Trainer:
    image_shape = tuple(data.images.shape[1:])
    logger.info("Run {}: outputs in {}", paths.name, paths.workdir.resolve())
    logger.info("Device: {}", describe(device))
    logger.info(
        "Data: {} images of {} from {}", len(data.images), "x".join(map(str, image_shape)),
        data.source,
    )  # fmt: skip
    generator, discriminator = build_models(config.model.name, image_shape, config.model.latent_dim)
    model = {"name": config.model.name, "image_shape": list(image_shape),
             "latent_dim": config.model.latent_dim}  # fmt: skip
    meta = {"model": model, "dataset": data.summary()}
    batches = DeviceBatches(data.images, device, config.optim.batch_size, config.train.seed)
    trainer = Trainer(config, generator, discriminator, batches, device, paths, tracker, meta)
    logger.info(
        "Model {}: G {:,} parameters, D {:,}; {} steps of {} images (batch {} x {})",
        config.model.name, _count(generator), _count(discriminator), trainer.total_steps(),
        trainer.images_per_step, config.optim.batch_size, config.optim.accumulation_steps,
    )  # fmt: skip
    return trainer


def _write_run_json(
    paths: RunPaths, config: Config, trainer: Trainer, device: torch.device, resumed: Path | None
) -> None:
    paths.write_run_json(
        {
            **config.to_dict(),
            **trainer.meta,
            "run_name": paths.name,
            "device": str(device),
            "total_steps": trainer.total_steps(),
            "images_per_step": trainer.images_per_step,
            "resumed_from": str(resumed) if resumed else None,
            "resumed_at_step": trainer.step if resumed else None,
            "versions": {
                "gan": __version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },  # fmt: skip
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
