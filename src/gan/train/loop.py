"""The training loop: steps, and the components called at their intervals.

It knows no concrete model or dataset: G and D come ready in a `Runtime`, batches from a
`DeviceBatches` stream, and the checkpointer, reporter and grid writer own their state.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan import distributed, rng
from gan.config import Config
from gan.config.sections import STEPS_MAX
from gan.config.values import auto_interval
from gan.devices import release_cached_memory
from gan.errors import Diverged, OutOfMemory
from gan.models.conditional import is_conditional
from gan.progress import TrainingProgress
from gan.train.batches import DeviceBatches
from gan.train.checkpointer import Checkpointer
from gan.train.grids import GridWriter
from gan.train.recipe import Recipe
from gan.train.reporter import Reporter
from gan.train.runtime import Runtime
from gan.train.signals import StopRequests
from gan.train.step import Micro, StepStats, train_step


@dataclass
class FitResult:
    step: int
    seconds: float
    last: dict[str, Any]  # the last record reported
    checkpoint: Path | None  # written at the end (None: the last step was already saved)
    interrupted: bool  # stopped by a signal


class Trainer:
    """The loop. Its components come ready (`gan.train.build` makes them from the config):
    it builds none of them, and calls each at its interval."""

    def __init__(
        self,
        config: Config,
        runtime: Runtime,
        batches: DeviceBatches,
        *,
        recipe: Recipe,
        images_per_step: int,
        checkpointer: Checkpointer,
        reporter: Reporter,
        grids: GridWriter,
    ) -> None:
        t, rt = config.train, runtime
        self.config, self.runtime, self.batches = config, runtime, batches
        self.recipe, self.images_per_step = recipe, images_per_step
        self.checkpointer, self.reporter, self.grids = checkpointer, reporter, grids
        self.step = 0
        self.latest: StepStats | None = None
        self.budget: dict[str, Any] | None = None  # what a --time-budget's warm-up measured
        # Latents come from their own generator, identical on every process, each taking
        # its slice: N processes x batch B draw exactly what one process x batch N*B would.
        self.latent_rng = torch.Generator(device=rt.device).manual_seed(t.seed + 3)
        self.growth = None  # --grow: the stage of each step
        if config.model.grow:
            from gan.train.stages import Growth

            m, ema = config.model, rt.G_ema.module if rt.G_ema is not None else None
            self.growth = Growth([rt.G, ema, rt.D], m.grow_from, m.grow_share, m.grow_fade)
        self._fit_schedules()

    def _fit_schedules(self) -> None:
        """The intervals and ramps that follow the run's planned length."""
        t, o = self.config.train, self.config.optim
        self.grids.every = auto_interval(t.sample_every, self.total_steps())
        # ADA may take `ada_ramp` of the run's images to move p from 0 to 1.
        ramp = o.ada_ramp * self.total_steps() * self.images_per_step
        self.recipe.augment.ramp_images = max(ramp, 1.0)
        if self.growth is not None:
            self.growth.total = self.total_steps()

    def replan(self, config: Config) -> None:
        """Train to the planned length of `config` (a --time-budget's fixed plan) from now
        on: every schedule follows it."""
        self.config = config
        self._fit_schedules()

    @property
    def planned(self) -> bool:
        """The run's length is known (a --time-budget fixes it after its warm-up)."""
        t = self.config.train
        return t.time_budget is None or t.planned_steps is not None

    def total_steps(self) -> int:
        t = self.config.train
        if t.time_budget is not None:  # before the warm-up fixes the plan: open-ended
            return t.planned_steps if t.planned_steps is not None else STEPS_MAX
        if t.max_steps is not None and t.epochs is None:
            return t.max_steps
        by_epochs = math.ceil((t.epochs or 1) * self.batches.num_images / self.images_per_step)
        return min(by_epochs, t.max_steps) if t.max_steps is not None else by_epochs

    def end_step(self) -> int:
        """Where this run stops: its planned length, or --stop-at before that."""
        stop_at = self.config.train.stop_at
        total = self.total_steps()
        return min(total, stop_at) if stop_at is not None else total

    def latents(self, count: int) -> torch.Tensor:
        dist, rt = self.runtime.dist, self.runtime
        z = torch.randn(
            count * dist.world_size, *rt.G.latent_shape, device=rt.device, generator=self.latent_rng
        )
        return z[dist.rank * count : (dist.rank + 1) * count] if dist.world_size > 1 else z

    def draw(self) -> Micro:
        """The next K real micro-batches, as many latents, and the reals' labels (None
        entries for an unconditional G): fakes are made for the labels of the reals."""
        k, batch = self.config.optim.accumulation_steps, self.config.optim.batch_size
        pairs = [self.batches.next_labelled() for _ in range(k)]
        conditional = is_conditional(self.runtime.G)
        labels = [y if conditional else None for _, y in pairs]
        return [x for x, _ in pairs], [self.latents(batch) for _ in range(k)], labels

    def lr_scale(self, step: int) -> float:
        """--lr-decay: 1 until the run's last fraction, then linearly down towards 0. A
        function of the step and the planned length alone, so a resume continues it."""
        decay = self.config.optim.lr_decay
        total = self.total_steps()
        left = total - step
        span = decay * total
        return 1.0 if decay == 0 or left >= span else max(left, 0) / span

    def _schedule_lr(self) -> None:
        o, rt = self.config.optim, self.runtime
        scale = self.lr_scale(self.step)
        for optimizer, lr in ((rt.opt_g, o.lr_g), (rt.opt_d, o.lr_d)):
            for group in optimizer.param_groups:
                group["lr"] = lr * scale
        self.reporter.rates = {"lr_g": o.lr_g * scale, "lr_d": o.lr_d * scale}

    def train_step(self) -> StepStats:
        self._schedule_lr()
        draw = self.draw
        if self.growth is not None:
            stage = self.growth.enter(self.step)
            self.reporter.rates |= self.growth.values(stage)
            draw = self.growth.draw(draw, stage)
        self.latest = train_step(self.runtime, self.recipe, draw, self.step)
        self.step += 1
        return self.latest

    def fit(self) -> FitResult:
        """Train to the step budget or a stop (time limit, SIGINT/SIGTERM), with outputs."""
        total = self.end_step()
        if self.step >= total:
            logger.warning(
                "The run is already at step {} of {}; give it more steps.", self.step, total
            )
            return FitResult(self.step, 0.0, {}, None, False)
        if self.step == 0:
            self.grids.save_reals(self.batches)
        self.reporter.begin()
        started, stops, stopping = time.perf_counter(), StopRequests(), False
        told = self.config.train.time_budget is not None  # its plan line said so already
        try:
            with stops, TrainingProgress(total, self.step, self.runtime.dist.is_main) as progress:
                while self.step < total and not stopping:
                    stats = self.train_step()
                    progress.advance()
                    position = (self.batches.epoch, self.batches.position)
                    generator = self.runtime.sampling_generator
                    record = self.reporter.after_step(stats, self.step, total, position, generator)
                    if record is not None:
                        progress.show(record)
                        told = told or self._tell_length(record, started, total)
                    stopping = self._agree_to_stop(stops, started, record is not None)
                    if stopping:
                        self.reporter.flush(self.step, position)
                    self._write_outputs()
        except torch.cuda.OutOfMemoryError:
            release_cached_memory(self.runtime.device)
            raise OutOfMemory(self.config.optim.batch_size) from None
        return self._finish(stopping, stops.requested, started)

    def _tell_length(self, record: dict[str, Any], started: float, total: int) -> bool:
        """Once, some seconds in: how long the planned steps take at this machine's speed
        (a step-planned run's length is the machine's; --time-budget fits the plan to it)."""
        if time.perf_counter() - started < 5.0 or not self.runtime.dist.is_main:
            return False
        left, limit = record["seconds_left"], self.config.train.time_limit
        if left <= 60:
            return True
        stop = ""
        if limit is not None and time.perf_counter() - started + left > limit:
            stop = f"; --time-limit {_minutes(limit)} stops it at {_minutes(limit)} of training"
        logger.info(
            "At {:,.0f} images/s the run's {:,} steps end in about {}{} (--time-budget fits "
            "a run's plan to a time instead).",
            record["images_per_s"],
            total,
            _minutes(left),
            stop,
        )
        return True

    def _agree_to_stop(self, stops: StopRequests, started: float, synced: bool) -> bool:
        """A signal or the time limit; processes agree at reporting steps (already a sync)."""
        limit = self.config.train.time_limit
        wants = stops.requested or (limit is not None and time.perf_counter() - started > limit)
        dist = self.runtime.dist
        if not dist.active:
            return wants
        return distributed.any_true(wants, dist, self.runtime.device) if synced else False

    def _write_outputs(self) -> None:
        if self.grids.due(self.step):
            self.grids.write(self.runtime.sampling_generator, self.step)
        best = self.reporter.new_best
        dist = self.runtime.dist
        if dist.active:  # every process must join the checkpoint's gather
            best = self.reporter.evaluated and distributed.any_true(best, dist, self.runtime.device)
        if self.checkpointer.due(self.step) or best:
            self.save(best=best)
            self.reporter.new_best = False

    def save(self, best: bool = False) -> Path | None:
        """A checkpoint of this step, never of NaN weights. A collective under DDP: every
        process hands over its RNG states; rank 0 builds the state and writes."""
        latest = self.latest
        if latest is not None and not bool(torch.isfinite(latest.d_loss + latest.g_loss)):
            raise Diverged(self.step, self.step)  # keep the good checkpoints
        rt = self.runtime
        rng_states = distributed.gather(rng.capture(rt.device), rt.dist)
        state = self.state_dict(rng_states) if rt.dist.is_main else None
        return self.checkpointer.save(self.step, state, best)

    def _finish(self, stopping: bool, signalled: bool, started: float) -> FitResult:
        if signalled:
            logger.warning("Stop requested: saving a checkpoint at step {}.", self.step)
        elif stopping:
            logger.info("Time limit reached at step {}.", self.step)
        path = None  # the checkpoint first: the grid goes to trackers, which may be slow
        if not self.checkpointer.due(self.step) and self.checkpointer.saved_step != self.step:
            path = self.save()
        if not self.grids.due(self.step):
            self.grids.write(self.runtime.sampling_generator, self.step)
        release_cached_memory(self.runtime.device)
        elapsed = time.perf_counter() - started
        return FitResult(self.step, elapsed, self.reporter.last, path, signalled)

    def state_dict(self, rng_states: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Everything a resume needs, as tensors and plain values (RNGs of every process)."""
        rng_states = rng_states or [rng.capture(self.runtime.device)]
        return {
            "step": self.step,
            "epoch": self.batches.epoch,
            "images_seen": self.batches.position,
            "config": self.config.to_dict(),
            **self.runtime.state_dict(),
            **self.recipe.state_dict(),
            **self.grids.state_dict(),
            **self.reporter.state_dict(),
            "rng": rng_states[0],
            "rng_ranks": rng_states,
            "latent_rng": self.latent_rng.get_state(),
            "world_size": self.runtime.dist.world_size,
            "time_budget": self.budget,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where a checkpoint left off: weights, optimizers, data, RNGs."""
        self.runtime.load_state_dict(state)
        self.recipe.load_state_dict(state)
        self.grids.load_state_dict(state)
        self.reporter.load_state_dict(state)
        self.step = int(state["step"])
        self.budget = state.get("time_budget")
        self.batches.position = int(state["images_seen"])
        rank = self.runtime.dist.rank
        ranks = state.get("rng_ranks") or [state["rng"]]
        try:
            rng.restore(ranks[rank] if len(ranks) > rank else ranks[0], self.runtime.device)
            if state.get("latent_rng") is not None:
                self.latent_rng.set_state(state["latent_rng"])
        except RuntimeError:  # a checkpoint from another kind of device
            logger.warning(
                "Random states were not restored (the checkpoint is from another device)."
            )


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
