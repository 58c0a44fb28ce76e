"""The training loop: steps, and the components called at the schedule's steps.

It knows no model and no dataset: the runtime holds G and D ready, the draws hand it what
each step trains on (labels, latents, growth stages included), the schedule says how long
it trains and when each output is due, and the checkpointer, reporter and grid writer own
their state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan import distributed
from gan.devices import release_cached_memory
from gan.errors import Diverged, OutOfMemory
from gan.progress import TrainingProgress
from gan.training.checkpointer import Checkpointer
from gan.training.parts import Parts
from gan.training.schedule import Schedule
from gan.training.signals import StopRequests
from gan.training.step import StepStats, train_step


@dataclass
class FitResult:
    step: int
    seconds: float
    last: dict[str, Any]  # the last record reported
    checkpoint: Path | None  # written at the end (None: the last step was already saved)
    interrupted: bool  # stopped by a signal


def take_step(parts: Parts, schedule: Schedule, step: int) -> tuple[StepStats, dict[str, float]]:
    """One step at `step` (steps taken before it): the learning rates and the growth stage
    the schedule gives it, then the passes. Returns its statistics and the rates in use."""
    rates = parts.runtime.scale_learning_rates(schedule.lr_factor(step))
    stage = schedule.stage(step)
    rates |= parts.draws.enter(stage)
    draw = lambda: parts.draws.draw(stage)  # noqa: E731 - n_critic draws a step
    stats = train_step(parts.runtime, parts.recipe, draw, step, schedule.ada_ramp_images)
    return stats, rates


class Trainer:
    """The loop over a run's `parts` (`gan.training.build` makes them) to the schedule's
    end, from `step`. It writes no part's fields: each part owns its state."""

    def __init__(
        self, parts: Parts, schedule: Schedule, checkpointer: Checkpointer, step: int = 0
    ) -> None:
        self.parts, self.schedule, self.checkpointer = parts, schedule, checkpointer
        self.step = step
        self.latest: StepStats | None = None  # the last step's statistics (NaN guard)
        self._rates: dict[str, float] = {}

    def train_step(self) -> StepStats:
        self.latest, self._rates = take_step(self.parts, self.schedule, self.step)
        self.step += 1
        return self.latest

    def fit(self) -> FitResult:
        """Train to the schedule's end or a stop (time limit, SIGINT/SIGTERM), with outputs."""
        end, parts = self.schedule.end, self.parts
        if self.step >= end:
            logger.warning(
                "The run is already at step {} of {}; give it more steps.", self.step, end
            )
            return FitResult(self.step, 0.0, {}, None, False)
        if self.step == 0:  # the reals once, beside the first grids
            parts.grids.save_reals(parts.draws.batches)
        parts.reporter.begin()
        started, stops, stopping = time.perf_counter(), StopRequests(), False
        told = self.schedule.time_budget is not None  # its plan line said so already
        try:
            with stops, TrainingProgress(end, self.step, parts.runtime.dist.is_main) as progress:
                while self.step < end and not stopping:
                    # 1. One step; its statistics to the reporter, a record at its steps.
                    self.train_step()
                    progress.advance()
                    record = self._report(end)
                    if record is not None:
                        progress.show(record)
                        told = told or self._tell_length(record, started, end)
                    # 2. A stop (a signal, the time limit) that every process agrees on.
                    stopping = self._agree_to_stop(stops, started, record is not None)
                    if stopping:
                        parts.reporter.flush(self.step, parts.draws.position)
                    # 3. The grid and the checkpoint, where the schedule says they are due.
                    self._write_outputs()
        except torch.cuda.OutOfMemoryError:
            release_cached_memory(parts.runtime.device)
            raise OutOfMemory(parts.draws.batch_size) from None
        return self._finish(stopping, stops.requested, started)

    def _report(self, end: int) -> dict[str, Any] | None:
        reporter, generator = self.parts.reporter, self.parts.runtime.sampling_generator
        position = self.parts.draws.position
        return reporter.after_step(self.latest, self.step, end, position, generator, self._rates)

    def _tell_length(self, record: dict[str, Any], started: float, end: int) -> bool:
        """Once, some seconds in: how long the planned steps take at this machine's speed
        (a step-planned run's length is the machine's; --time-budget fits the plan to it)."""
        if time.perf_counter() - started < 5.0 or not self.parts.runtime.dist.is_main:
            return False
        left, limit = record["seconds_left"], self.schedule.time_limit
        if left <= 60:
            return True
        stop = ""
        if limit is not None and time.perf_counter() - started + left > limit:
            stop = f"; --time-limit {_minutes(limit)} stops it at {_minutes(limit)} of training"
        logger.info(
            "At {:,.0f} images/s the run's {:,} steps end in about {}{} (--time-budget fits "
            "a run's plan to a time instead).",
            record["images_per_s"],
            end,
            _minutes(left),
            stop,
        )
        return True

    def _agree_to_stop(self, stops: StopRequests, started: float, synced: bool) -> bool:
        """A signal or the time limit; processes agree at reporting steps (already a sync)."""
        limit, rt = self.schedule.time_limit, self.parts.runtime
        wants = stops.requested or (limit is not None and time.perf_counter() - started > limit)
        if not rt.dist.active:
            return wants
        return distributed.any_true(wants, rt.dist, rt.device) if synced else False

    def _write_outputs(self) -> None:
        parts, rt = self.parts, self.parts.runtime
        if self.schedule.grid_due(self.step):
            parts.grids.write(rt.sampling_generator, self.step)
        best = parts.reporter.take_new_best()
        if rt.dist.active:  # every process must join the checkpoint's gather
            best = parts.reporter.evaluated and distributed.any_true(best, rt.dist, rt.device)
        if self.checkpointer.due(self.step) or best:
            self.save(best=best)

    def save(self, best: bool = False, last: bool = False) -> Path | None:
        """A checkpoint of this step (`last`: unless saved already), never of NaN weights.
        A collective under DDP."""
        latest = self.latest
        if latest is not None and not bool(torch.isfinite(latest.d_loss + latest.g_loss)):
            raise Diverged(self.step, self.step)  # keep the good checkpoints
        if last:
            return self.checkpointer.save_last(self.step)
        return self.checkpointer.save(self.step, best)

    def _finish(self, stopping: bool, signalled: bool, started: float) -> FitResult:
        if signalled:
            logger.warning("Stop requested: saving a checkpoint at step {}.", self.step)
        elif stopping:
            logger.info("Time limit reached at step {}.", self.step)
        path = self.save(last=True)  # first: the grid goes to trackers, which may be slow
        if not self.schedule.grid_due(self.step):
            self.parts.grids.write(self.parts.runtime.sampling_generator, self.step)
        release_cached_memory(self.parts.runtime.device)
        elapsed = time.perf_counter() - started
        return FitResult(self.step, elapsed, self.parts.reporter.last, path, signalled)


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
