"""`gan train` as a library call: resolve defaults, check, load, build, train (or resume)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from loguru import logger

from gan import distributed, speed
from gan.config import FIELDS, Config
from gan.data import DATASETS, ImageData, load_dataset
from gan.devices import release_cached_memory
from gan.errors import GanError
from gan.models import MODELS, check_model_fits, has_batch_statistics
from gan.rng import seed_everything
from gan.runs.aside import set_aside
from gan.runs.folders import RunPaths, prepare_run
from gan.runs.resume import find_resume, merge_for_resume, resume_target
from gan.runs.status import StatusRecorder
from gan.runs.tracking import RunTracker, setup_console_logging
from gan.train import board
from gan.train.build import build_trainer, record_early_stop, write_run_records
from gan.train.plan import (
    apply_dataset_defaults,
    label_defaults,
    small_data_defaults,
    unset_options,
)
from gan.train.runtime import setup_device, setup_speed

if TYPE_CHECKING:
    from gan.train.loop import Trainer


@dataclass
class TrainResult:
    run: str | None  # None on ranks other than 0, which write nothing
    paths: RunPaths | None
    step: int
    seconds: float
    interrupted: bool


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
    if config.model.conditional and spec.labels is None:
        raise GanError(
            f"Dataset {config.data.name!r} has no labels, so --conditional cannot be used; "
            "leave it out, or use a dataset with labels (mnist, bps, or a folder with one "
            "subfolder per class)."
        )
    resolved = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, image_size=size),
        model=dataclasses.replace(config.model, name=model),
        train=dataclasses.replace(config.train, epochs=epochs),
    )
    if size is not None:
        channels = spec.channels or 1  # the channel count does not change which sizes fit
        check_model_fits(model, (channels, *size), config.model.latent_dim)
        check_penalties(resolved, (channels, *size))
    return resolved


def check_penalties(config: Config, image_shape: tuple[int, int, int]) -> None:
    """R1 and WGAN-GP penalise D's gradient image by image; BatchNorm in D couples them."""
    o, m = config.optim, config.model
    if o.r1_gamma == 0 and o.loss != "wgan-gp":
        return
    if has_batch_statistics(m.name, image_shape, m.latent_dim):
        free = [n for n in MODELS if not has_batch_statistics(n, (1, 32, 32), m.latent_dim)]
        raise GanError(
            f"Model {m.name!r} has BatchNorm in its discriminator, which mixes the images "
            f"that --r1-gamma and --loss wgan-gp penalise one by one; choose --model "
            f"{' or '.join(free)}, or leave the penalty out."
        )


def _check_same_data(data: ImageData, state: dict[str, Any], path: Path) -> None:
    saved = state.get("dataset", {})
    now = data.summary()
    for key in ("num_images", "image_shape"):
        if saved.get(key) is not None and saved[key] != now[key]:
            raise GanError(
                f"The data has {key.replace('_', ' ')} {now[key]} but {path} was trained on "
                f"{saved[key]}; resume with the same data or start a new run."
            )
    classes = state.get("model", {}).get("classes")
    if classes is not None and list(data.classes) != list(classes):
        raise GanError(
            f"The data has the classes {', '.join(data.classes)} but {path} was trained on "
            f"{', '.join(classes)}; resume with the same data or start a new run."
        )


def check_labels(config: Config, data: ImageData) -> None:
    """--conditional needs a label for every image, and more than one class to be useful."""
    if not config.model.conditional:
        return
    if data.labels is None:
        where = DATASETS.get(config.data.name).labels or "labels"
        raise GanError(
            f"--conditional needs {where}, and {data.source} has none; add them or leave "
            "--conditional out."
        )
    if len(data.classes) < 2:
        logger.warning(
            "The data has one class ({}): --conditional will learn nothing from it.",
            ", ".join(data.classes),
        )


def _resumed(
    config: Config, resume: str | None, chosen: frozenset[str]
) -> tuple[Config, dict[str, Any] | None, Path | None]:
    """The checkpoint's config with the user's choices applied, its state and its path.
    Where the run writes (workdir, run name) never comes from inside the checkpoint."""
    if resume is None:
        return config, None, None
    config.validate()
    t = config.train
    found = find_resume(Path(t.workdir).expanduser(), t.run_name, resume)
    if found is None:  # only --resume auto-or-new gets here: auto raises
        logger.info("No checkpoint to resume from; starting a new run.")
        return config, None, None
    workdir = t.workdir if "train.workdir" in chosen else None
    target = resume_target(found, workdir, t.run_name if "train.run_name" in chosen else None)
    config = merge_for_resume(Config.from_dict(found.state["config"]), config, set(chosen))
    outputs = {"train.workdir": str(target.workdir), "train.run_name": target.name}
    if "train.stop_at" not in chosen:  # a resumed run goes on unless told where to stop
        outputs["train.stop_at"] = None
    return config.replace(outputs), found.state, found.path


def train(
    config: Config, resume: str | None = None, chosen: frozenset[str] | None = None
) -> TrainResult:
    """Train one run end to end (or continue one) and return a summary.

    `chosen` names the options (`section.field`) the user set (default: those that differ
    from their declared defaults). A new run takes the dataset's defaults for the others;
    on resume the chosen ones are applied to the checkpoint's config, and those that
    define the run must match it."""
    if chosen is None:
        chosen = frozenset(FIELDS) - unset_options(config)
    config, state, resumed_from = _resumed(config, resume, chosen)
    if state is None:  # a resumed run keeps the defaults it was started with
        config = apply_dataset_defaults(config, chosen)
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
    t = config.train
    device = setup_device(t.device, info, t.sync_bn)
    try:
        settings = setup_speed(t.precision, t.channels_last, t.compile, device)
        fresh = chosen if state is None else None  # a resumed run keeps its augmentation
        result = _train(config, info, device, settings, state, resumed_from, resume, fresh)
        distributed.barrier(info)  # no process tears gloo down while another still uses it
        return result
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
    resume: str | None,
    fresh: frozenset[str] | None,
) -> TrainResult:
    """`fresh`: the options the user chose, for a new run (None when resuming)."""
    seed_everything(config.train.seed + info.rank)  # per-process dropout; rank 0's weights win
    data = _load_once_per_node(config, info)
    if fresh is not None:
        config = small_data_defaults(config, data, fresh)
        config = label_defaults(config, data, fresh)
    image_shape = tuple(data.images.shape[1:])
    check_model_fits(config.model.name, image_shape, config.model.latent_dim)
    check_penalties(config, image_shape)
    check_labels(config, data)
    if state is not None:
        _check_same_data(data, state, resumed_from)
    config = config.replace({"data.image_size": image_shape[1:]})
    paths, lock = None, None
    if info.is_main:  # only rank 0 writes checkpoints, logs, grids (and holds the lock)
        t = config.train
        paths, lock = prepare_run(
            t.workdir, t.run_name, data.name, config.model.name, resume is not None
        )
    tracker = RunTracker(paths.logs) if paths is not None else None  # opened once restored
    trainer, status = None, None
    try:
        trainer = build_trainer(config, data, device, paths, tracker, info, settings)
        if state is not None:
            _restore(trainer, state, resumed_from)
        if paths is not None:  # the state is good: only now are the run's files touched
            step = int(state["step"]) if state is not None else 0
            if resume is not None:  # files of another timeline move aside
                set_aside(paths, step, start_over=state is None)
            tracker.open(resume_step=step)
            status = StatusRecorder(paths)
            write_run_records(paths, config, trainer, resumed_from)
            status.training(trainer.step, trainer.total_steps())
            board.describe_run(tracker, config, trainer.step)
        result = _fit(trainer, paths, config)
        if status is not None:
            ended = "interrupted" if result.interrupted else "finished"
            status.ended(ended, result.step, trainer.total_steps())
    except BaseException as exc:
        if status is not None:
            status.ended(*_failure(exc, trainer))
        raise
    finally:
        _close(tracker, trainer, lock, device)
    name = paths.name if paths else None
    return TrainResult(name, paths, result.step, result.seconds, result.interrupted)


def _restore(trainer: Trainer, state: dict[str, Any], path: Path | None) -> None:
    """Load a checkpoint into the trainer; a state that does not fit is one sentence."""
    try:
        trainer.load_state_dict(state)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else repr(exc)
        raise GanError(
            f"{path} does not fit this run ({type(exc).__name__}: {reason}), so nothing of the "
            "run was changed; resume from a checkpoint gan train wrote for it."
        ) from None
    logger.info("Resumed from {} at step {}", path, trainer.step)


def _fit(trainer: Trainer, paths: RunPaths | None, config: Config) -> Any:
    try:
        result = trainer.fit()
    except OSError as exc:  # disk full, folder removed or made read-only mid-run
        raise GanError(
            f"Could not write {exc.filename or 'an output file'} ({exc.strerror or exc}); "
            "free disk space or choose a writable --workdir. Earlier checkpoints are intact."
        ) from None
    if paths is not None and result.step < trainer.end_step():
        record_early_stop(paths, config, result.step)
    return result


def _close(tracker: RunTracker | None, trainer: Trainer | None, lock: Any, device) -> None:
    if tracker is not None and tracker.opened:
        if trainer is not None:  # the HParams metrics, however the run ended
            r = trainer.reporter
            board.record_metrics(tracker, trainer.step, r.best_fid, r.last_fid)
        tracker.close()
    if lock is not None:
        lock.release()
    release_cached_memory(device)


def _failure(exc: BaseException, trainer: Trainer | None) -> tuple[str, int, int, str]:
    """status.json's end of a run that raised: interrupted (a second Ctrl-C), else failed."""
    step, planned = (trainer.step, trainer.total_steps()) if trainer is not None else (0, 0)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", step, planned, "KeyboardInterrupt"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return "failed", step, planned, reason


def _load_once_per_node(config: Config, info: distributed.DistInfo) -> ImageData:
    """Local rank 0 loads first (downloading S3 objects into the cache); the rest then
    find the cache filled, so each node downloads once."""
    if info.local_rank == 0:
        data = load_dataset(config.data)
        distributed.barrier(info)
        return data
    distributed.barrier(info)
    return load_dataset(config.data)
