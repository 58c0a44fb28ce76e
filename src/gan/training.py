"""`gan train` as a library call: resolve defaults, check, load, build, train (or resume)."""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan import __version__, distributed, speed
from gan.config import Config
from gan.config_file import config_toml
from gan.data import DATASETS, ImageData, load_dataset
from gan.data.stream import DeviceBatches
from gan.devices import (
    configure_cuda_allocator,
    configure_host_allocator,
    describe,
    release_cached_memory,
    resolve_device,
)
from gan.errors import GanError
from gan.models import MODELS, build_models, check_model_fits
from gan.outputs import RunPaths, prepare_run
from gan.resume import find_resume, merge_for_resume
from gan.rng import seed_everything
from gan.tracking import RunTracker, setup_console_logging
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
    config: Config, resume: str | None = None, chosen: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Train one run end to end (or continue one) and return a summary.

    `chosen` names the options (`section.field`) the user set; on resume they are applied
    to the checkpoint's config, and those that define the run must match it."""
    state, resumed_from = None, None
    if resume is not None:
        config.validate()
        found = find_resume(Path(config.train.workdir).expanduser(), config.train.run_name, resume)
        if found is None:
            logger.info("No checkpoint to resume from; starting a new run.")
        else:
            resumed_from, state = found
            saved = Config.from_dict(state["config"])
            config = merge_for_resume(saved, config, set(chosen))
            config.train.run_name = state.get("run_name") or config.train.run_name
    config = resolve(config)
    info = distributed.from_env()
    if info.active and not info.is_main:  # other ranks report warnings and errors only
        setup_console_logging("WARNING", f"[rank {info.rank}] ")
    if state is not None and int(state.get("world_size", 1)) != info.world_size:
        raise GanError(
            f"{resumed_from} was trained by {state.get('world_size', 1)} process(es) and this "
            f"run has {info.world_size}; resume with the same number (the data order and the "
            "global batch depend on it)."
        )
    configure_cuda_allocator()
    device = resolve_device(config.train.device)
    configure_host_allocator(device)
    if config.train.sync_bn and device.type != "cuda":
        raise GanError("--sync-bn needs CUDA GPUs (SyncBatchNorm does not run on the CPU).")
    device = distributed.init(info, device)
    try:
        t = config.train
        settings = speed.resolve_speed(t.precision, t.channels_last, t.compile, device)
        speed.configure_backends(device)
        settings = speed.settle_compile(settings, device)
        return _train(config, info, device, settings, state, resumed_from, resume is not None)
    except (RuntimeError, torch.distributed.DistError) as exc:
        if not info.active or isinstance(exc, torch.cuda.OutOfMemoryError):
            raise
        # Usually a collective that broke because another process failed first.
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise GanError(
            f"Lost contact with the other processes ({first}); the first failure above says why."
        ) from None
    finally:
        distributed.shutdown()


def _train(
    config: Config,
    info: distributed.DistInfo,
    device: torch.device,
    settings: speed.Speed,
    state: dict[str, Any] | None,
    resumed_from: Path | None,
    resuming: bool,
) -> dict[str, Any]:
    seed_everything(config.train.seed + info.rank)  # per-process dropout; rank 0's weights win
    data = _load_once_per_node(config, info)
    image_shape = tuple(data.images.shape[1:])
    check_model_fits(config.model.name, image_shape, config.model.latent_dim)
    if state is not None:
        _check_same_data(data, state, resumed_from)
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, image_size=image_shape[1:])
    )
    paths, tracker = None, None
    if info.is_main:  # only rank 0 writes checkpoints, logs, grids
        paths = prepare_run(
            config.train.workdir, config.train.run_name, data.name, config.model.name, resuming
        )
        tracker = RunTracker(paths.logs, resume_step=int(state["step"]) if state else 0)
    try:
        trainer = _build_trainer(config, data, device, paths, tracker, info, settings)
        if state is not None:
            trainer.load_state_dict(state)
            logger.info("Resumed from {} at step {}", resumed_from, trainer.step)
        if paths is not None:
            _write_run_json(paths, config, trainer, device, resumed_from)
        try:
            result = trainer.train()
            if paths is not None and result["step"] < trainer.total_steps():
                _record_early_stop(paths, config, result["step"])
        except OSError as exc:  # disk full, folder removed or made read-only mid-run
            raise GanError(
                f"Could not write {exc.filename or 'an output file'} ({exc.strerror or exc}); "
                "free disk space or choose a writable --workdir. Earlier checkpoints are intact."
            ) from None
    finally:
        if tracker is not None:
            tracker.close()
        release_cached_memory(device)
    result.update(run=paths.name if paths else None, paths=paths)
    return result


def _load_once_per_node(config: Config, info: distributed.DistInfo) -> ImageData:
    """Local rank 0 loads first (downloading S3 objects into the cache); the rest then
    find the cache filled, so each node downloads once."""
    if info.local_rank == 0:
        data = load_dataset(config.data)
        distributed.barrier(info)
        return data
    distributed.barrier(info)
    return load_dataset(config.data)


def _build_trainer(
    config: Config,
    data: ImageData,
    device: torch.device,
    paths: RunPaths | None,
    tracker: RunTracker | None,
    info: distributed.DistInfo,
    settings: speed.Speed,
) -> Trainer:
    image_shape = tuple(data.images.shape[1:])
    if paths is not None:
        logger.info("Run {}: outputs in {}", paths.name, paths.workdir.resolve())
    logger.info(
        "Device: {}{}; {}",
        describe(device),
        f"; {info.world_size} processes" if info.active else "",
        speed.describe(settings),
    )
    logger.info(
        "Data: {} images of {} from {}",
        len(data.images),
        "x".join(map(str, image_shape)),
        data.source,
    )
    generator, discriminator = build_models(config.model.name, image_shape, config.model.latent_dim)
    model = {
        "name": config.model.name,
        "image_shape": list(image_shape),
        "latent_dim": config.model.latent_dim,
    }
    meta = {"model": model, "dataset": data.summary()}
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    batches = DeviceBatches(
        data.images,
        device,
        config.optim.batch_size,
        config.train.seed,
        info.rank,
        info.world_size,
        memory_format,
    )
    if not batches.resident:
        logger.info("The images do not fit on {}: streaming them from pinned host memory.", device)
    evaluator = None
    if config.train.eval_every and info.is_main:
        from gan.metrics.evaluate import Evaluator

        evaluator = Evaluator(
            data.images, config.train.eval_features, None, config.train.eval_samples, device
        )
        logger.info("FID every {} steps with {} features", config.train.eval_every, evaluator.name)
    trainer = Trainer(
        config,
        generator,
        discriminator,
        batches,
        device,
        paths,
        tracker,
        meta,
        info,
        evaluator,
        settings,
    )
    logger.info(
        "Model {}: G {:,} parameters, D {:,}; {} steps of {} images (batch {} x {} x {} proc)",
        config.model.name,
        _count(generator),
        _count(discriminator),
        trainer.total_steps(),
        trainer.images_per_step,
        config.optim.batch_size,
        config.optim.accumulation_steps,
        info.world_size,
    )
    return trainer


def _write_run_json(
    paths: RunPaths, config: Config, trainer: Trainer, device: torch.device, resumed: Path | None
) -> None:
    config = config.replace({"train.run_name": paths.name})
    paths.write_config_toml(config_toml(config))  # `gan train --config` of it trains it again
    paths.write_run_json(
        {
            **config.to_dict(),
            **trainer.meta,
            "run_name": paths.name,
            "device": str(device),
            "speed": trainer.speed.to_dict(),  # precision, layout and compile as resolved
            "data_on_device": trainer.batches.resident,
            "total_steps": trainer.total_steps(),
            "images_per_step": trainer.images_per_step,
            "world_size": trainer.dist.world_size,
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


def _record_early_stop(paths: RunPaths, config: Config, step: int) -> None:
    """A run stopped by its time limit or a signal: config.toml now trains it to this step."""
    stopped = config.replace(
        {"train.run_name": paths.name, "train.max_steps": step, "train.time_limit": None}
    )
    paths.write_config_toml(config_toml(stopped))
    logger.info("{} records the run up to step {} (max_steps).", paths.logs / "config.toml", step)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
