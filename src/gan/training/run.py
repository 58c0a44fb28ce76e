"""`gan train` as a library call: plan, load, plan again, build, (warm up,) train.

The flow is one way: the plan (`gan.training.plan`) resolves the config before and after
the data is loaded, with the schedule; the builder makes the run's parts; a
--time-budget's warm-up fixes the schedule's length; the loop trains; the run's folders,
status and trackers (`gan.runs`) record it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan import distributed, speed
from gan.config import Config
from gan.config.given import BUDGET_SET, sources_of
from gan.data import ImageData, load_dataset
from gan.devices import release_cached_memory
from gan.errors import DoesNotFit, GanError
from gan.progress import setup_console_logging
from gan.rng import seed_everything
from gan.runs.aside import set_aside
from gan.runs.folders import RunLock, RunPaths, prepare_run
from gan.runs.resume import RESUME_MODES
from gan.runs.status import StatusRecorder
from gan.runs.tracking import RunLog, Tracker, make_trackers
from gan.training import budget, records, transfer
from gan.training import plan as plans
from gan.training.build import assemble, build_parts
from gan.training.loop import FitResult, Trainer
from gan.training.parts import Parts
from gan.training.rehearsal import Rehearsal
from gan.training.resumed import Resumed, plan_before_data
from gan.training.runtime import setup_device, setup_speed
from gan.training.schedule import Measured


@dataclass
class TrainResult:
    run: str | None  # None on ranks other than 0, which write nothing
    paths: RunPaths | None
    step: int
    seconds: float
    interrupted: bool

    @property
    def checkpoint(self) -> Path | None:
        """The run's newest checkpoint (checkpoints/<run>/last.pt)."""
        return self.paths.run_last if self.paths is not None else None


def train(
    config: Config,
    resume: str | None = None,
    chosen: frozenset[str] | None = None,
) -> TrainResult:
    """Train one run end to end (or continue one) and return a summary.

    `chosen` names the options (`section.field`) the user set (default: those that differ
    from their declared defaults); a `gan.config.Chosen` also says where each came from
    (a flag, a config file; else: an argument). A new run takes the dataset's defaults
    for the others; on resume the chosen ones are applied to the checkpoint's config, and those that
    define the run must match it."""
    config.validate()  # once: every option within its declared bounds
    sources, skip = sources_of(config, chosen), set()
    while True:
        try:
            return _train(config, resume, dict(sources), skip)
        except DoesNotFit as exc:  # a damaged newest file: --resume auto takes the one before
            if resume not in RESUME_MODES:
                raise
            logger.warning(
                "Skipping {}: it loads but does not fit the run ({}); trying an older one.",
                exc.path,
                exc.reason,
            )
            skip.add(Path(str(exc.path)))


def _train(
    config: Config, resume: str | None, sources: dict[str, str], skip: set[Path]
) -> TrainResult:
    """One attempt of `train`: a checkpoint that does not fit ends it with `DoesNotFit`
    before any of the run's files was touched."""
    plan, resumed = plan_before_data(config, resume, sources, skip=skip)
    info = distributed.from_env()
    if info.active and not info.is_main:  # other ranks report warnings and errors only
        setup_console_logging("WARNING", f"[rank {info.rank}] ")
    resumed.check_world_size(info)
    t = plan.config.train
    device = setup_device(t.device, info, t.sync_bn)
    try:
        settings = setup_speed(t.precision, t.channels_last, t.compile, device)
        result = _session(plan, info, device, settings, resumed, resume)
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


def _session(
    plan: plans.Plan,
    info: distributed.DistInfo,
    device: torch.device,
    settings: speed.Speed,
    resumed: Resumed,
    resume: str | None,
) -> TrainResult:
    """This session of the run: the data, the plan's second phase, the run's folders, its
    parts (restored on resume), a --time-budget's warm-up, then the loop."""
    trackers = _trackers(plan.config) if info.is_main else []  # installed, reachable: now
    seed_everything(plan.config.train.seed + info.rank)  # per-process dropout; rank 0's wins
    data = _load_once_per_node(plan.config, info)
    plan = plans.after_data(plan, data, resumed.state, resumed.path, info.world_size)
    if resumed.init is not None and resumed.state is None:  # before any folder is made
        transfer.check_fits(resumed.init, tuple(data.images.shape[1:]), _classes(plan, data))
    paths, lock = _lock(plan, data, info, resume)
    if paths is not None:
        plan = plans.named(plan, paths.name)
    log = RunLog(paths.logs, trackers) if paths is not None else None  # opened once restored
    trainer, status, ended = None, None, "failed"
    try:
        parts, header = build_parts(plan, data, device, paths, log, info, settings)
        header["init_from"] = resumed.origin  # in every checkpoint: a resume keeps it
        if resumed.state is not None:
            _restore(parts, resumed)
        elif resumed.init is not None:  # --init-from: a new run from another's weights
            transfer.carry(parts.runtime, resumed.init, _classes(plan, data))
        if plan.schedule.open:  # --time-budget: the plan's warm-up fixes the length
            plan = budget.fit(plan, Rehearsal(parts, plan.schedule, resumed.step), info)
        schedule = plan.schedule
        trainer = assemble(parts, plan.config, schedule, resumed.step, paths=paths, header=header)
        if paths is not None:  # the state is good: only now are the run's files touched
            status = _open_run(paths, log, plan, header, trainer, resumed, resume)
        result = _fit(trainer, paths, plan)
        ended = "interrupted" if result.interrupted else "finished"
        if status is not None:
            status.ended(ended, result.step, plan.schedule.total)
    except BaseException as exc:
        failure = _failure(exc, trainer)
        ended = failure[0]
        if status is not None:
            status.ended(*failure)
        raise
    finally:
        _close(log, trainer, lock, device, ended, paths)
    name = paths.name if paths else None
    return TrainResult(name, paths, result.step, result.seconds, result.interrupted)


def _lock(
    plan: plans.Plan, data: ImageData, info: distributed.DistInfo, resume: str | None
) -> tuple[RunPaths | None, RunLock | None]:
    """Rank 0 alone writes checkpoints, logs and grids, and holds the run's lock."""
    if not info.is_main:
        return None, None
    t = plan.config.train
    return prepare_run(t.workdir, t.run_name, data.name, plan.config.model.name, resume is not None)


def _restore(parts: Parts, resumed: Resumed) -> None:
    """Load a checkpoint into the run's parts; a state that does not fit is one sentence."""
    try:
        parts.load_state_dict(resumed.state)
    except Exception as exc:  # noqa: BLE001 - whatever a damaged state provokes
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else repr(exc)
        raise DoesNotFit(resumed.path, f"{type(exc).__name__}: {reason}") from None
    logger.info("Resumed from {} at step {}", resumed.path, resumed.step)


def _classes(plan: plans.Plan, data: ImageData) -> tuple[str, ...]:
    return tuple(data.classes) if plan.config.model.conditional else ()


def _trackers(config: Config) -> list[Tracker]:
    """The run's trackers, each checked (installed, its server reachable) before the data
    is loaded, so a tracker that cannot work is one sentence and no run files."""
    t = config.track
    return make_trackers(t.names(), t, Path(config.train.workdir).expanduser(), config.data.name)


def _open_run(
    paths: RunPaths,
    log: RunLog,
    plan: plans.Plan,
    header: dict[str, Any],
    trainer: Trainer,
    resumed: Resumed,
    resume: str | None,
) -> StatusRecorder:
    """Set another timeline's files aside, open the trackers, write the run's records."""
    if resume is not None:
        set_aside(paths, resumed.step, start_over=resumed.state is None)
    log.open(records.run_start(plan.config, paths.logs, paths.name, resumed.step))
    status = StatusRecorder(paths)
    records.write_run_records(paths, plan, header, trainer, resumed.path, resumed.origin)
    schedule = plan.schedule
    status.training(trainer.step, schedule.total)
    if schedule.fitted is not None:  # the plan, in train.log and TensorBoard too
        summary = Measured(**schedule.fitted).summary()
        if not resumed.step or plan.sources.get("train.planned_steps") == BUDGET_SET:
            logger.info(summary)
        log.text("time_budget", summary, trainer.step)
    if schedule.growth is not None:  # --grow: the stages, and that grids are upsampled
        stages = schedule.growth.describe(tuple(header["model"]["image_shape"][1:]))
        logger.info(stages)
        log.text("growth", stages, trainer.step)
    return status


def _fit(trainer: Trainer, paths: RunPaths | None, plan: plans.Plan) -> FitResult:
    try:
        result = trainer.fit()
    except OSError as exc:  # disk full, folder removed or made read-only mid-run
        raise GanError(
            f"Could not write {exc.filename or 'an output file'} ({exc.strerror or exc}); "
            "free disk space or choose a writable --workdir. Earlier checkpoints are intact."
        ) from None
    if paths is not None and result.step < trainer.schedule.end:
        records.record_early_stop(paths, plan, result.step)
    return result


def _close(
    log: RunLog | None, trainer: Trainer | None, lock: Any, device, ended: str, paths
) -> None:
    try:
        if log is not None and log.opened:  # the trackers' summary, however the run ended
            log.close(records.run_end(trainer, ended, log.seconds(), paths.run_last))
    finally:
        if lock is not None:
            lock.release()
        release_cached_memory(device)


def _failure(exc: BaseException, trainer: Trainer | None) -> tuple[str, int, int, str]:
    """status.json's end of a run that raised: interrupted (a second Ctrl-C), else failed."""
    step, planned = (trainer.step, trainer.schedule.total) if trainer is not None else (0, 0)
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
