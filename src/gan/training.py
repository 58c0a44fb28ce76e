"""`gan train` as a library call: resolve defaults, check, load, build, train."""

from __future__ import annotations

import dataclasses
import platform
import time
from typing import Any

import torch
from loguru import logger

from gan import __version__
from gan.config import Config
from gan.data import DATASETS, load_dataset
from gan.data.stream import DeviceBatches
from gan.devices import configure_cuda_allocator, describe, release_cached_memory, resolve_device
from gan.models import MODELS, build_models, check_model_fits
from gan.outputs import prepare_run
from gan.tracking import RunTracker
from gan.trainer import Trainer, seed_everything


def resolve(config: Config) -> Config:
    """Fill in the dataset's defaults (model, image size, epochs) and validate everything."""
    config.validate()
    spec = DATASETS.get(config.data.name)
    model = config.model.name or spec.default_model
    MODELS.get(model)  # unknown names fail here with the list of valid ones
    epochs = config.train.epochs
    if epochs is None and config.train.max_steps is None:
        epochs = spec.default_epochs
    resolved = dataclasses.replace(
        config,
        data=dataclasses.replace(
            config.data, image_size=config.data.image_size or spec.default_image_size
        ),
        model=dataclasses.replace(config.model, name=model),
        train=dataclasses.replace(config.train, epochs=epochs),
    )
    if resolved.data.image_size is not None:
        channels = spec.channels or 1  # the channel count does not change which sizes fit
        check_model_fits(model, (channels, *resolved.data.image_size), config.model.latent_dim)
    return resolved


def train(config: Config) -> dict[str, Any]:
    """Train one run end to end and return a summary (steps, seconds, paths)."""
    config = resolve(config)
    configure_cuda_allocator()
    device = resolve_device(config.train.device)
    seed_everything(config.train.seed)
    data = load_dataset(config.data)
    image_shape = tuple(data.images.shape[1:])
    check_model_fits(config.model.name, image_shape, config.model.latent_dim)
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, image_size=image_shape[1:])
    )
    paths = prepare_run(config.train.workdir, config.train.run_name, data.name, config.model.name)
    tracker = RunTracker(paths.logs)
    try:
        logger.info("Run {}: outputs in {}", paths.name, paths.workdir.resolve())
        logger.info("Device: {}", describe(device))
        logger.info(
            "Data: {} images of {} from {}",
            len(data.images),
            "x".join(map(str, image_shape)),
            data.source,
        )
        generator, discriminator = build_models(
            config.model.name, image_shape, config.model.latent_dim
        )
        model_meta = {
            "name": config.model.name,
            "image_shape": list(image_shape),
            "latent_dim": config.model.latent_dim,
        }
        meta = {"model": model_meta, "dataset": data.summary()}
        batches = DeviceBatches(data.images, device, config.optim.batch_size, config.train.seed)
        trainer = Trainer(config, generator, discriminator, batches, device, paths, tracker, meta)
        paths.write_run_json(
            {
                **config.to_dict(),
                **meta,
                "run_name": paths.name,
                "device": str(device),
                "total_steps": trainer.total_steps(),
                "images_per_step": trainer.images_per_step,
                "versions": {
                    "gan": __version__,
                    "torch": torch.__version__,
                    "python": platform.python_version(),
                },
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        logger.info(
            "Model {}: G {:,} parameters, D {:,}; {} steps of {} images (batch {} x {})",
            config.model.name,
            _count(generator),
            _count(discriminator),
            trainer.total_steps(),
            trainer.images_per_step,
            config.optim.batch_size,
            config.optim.accumulation_steps,
        )
        result = trainer.train()
    finally:
        tracker.close()
        release_cached_memory(device)
    result.update(run=paths.name, paths=paths)
    return result


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
