"""The schedule: a run's length and everything that follows it, resolved once by the plan.

Values, and pure functions of the step: the planned steps and where this session ends, the
learning-rate factor, ADA's ramp, the grid and checkpoint intervals, the growth stages.
The trainer and its components read it; nobody derives any of it again. Every checkpoint
records it, and a resume continues it by one rule (docs/resume-and-failures.md): a new
length moves the learning-rate decay with it (the resume says so where that changes the
rate), and nothing that has progressed goes back (the growth stages keep the steps they
were laid on, ADA's ramp its speed). Importing this module does not load torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from gan.config import Config, TrainConfig
from gan.config.sections import STEPS_MAX
from gan.config.values import auto_interval, seconds_text
from gan.errors import GanError


@dataclass(frozen=True)
class Growth:
    """--grow's stages: `levels` coarse levels in the first `share` of `planned` steps, each
    faded in over the first `fade` of its segment."""

    levels: int
    share: float
    fade: float
    planned: int  # the steps the stages were laid on: the run's first plan, kept on resume

    def stage(self, step: int) -> Any:
        from gan.models.growth import schedule

        return schedule(step, self.planned, self.levels, self.share, self.fade)

    def describe(self, size: tuple[int, int]) -> str:
        h, w = size
        sizes = [f"{h // 2**k}x{w // 2**k}" for k in range(self.levels, -1, -1)]
        segment = self.share * self.planned / max(self.levels, 1)
        return (
            f"Coarse to fine: {' -> '.join(sizes)}, a stage every {segment:,.0f} steps, each "
            f"faded in over {self.fade * segment:,.0f}; full size from step "
            f"{round(self.levels * segment):,}. Until then grids and FID show the stage's "
            "images upsampled (bilinear) to full size."
        )


@dataclass(frozen=True)
class Measured:
    """What a --time-budget's warm-up found and what it planned (`Schedule.fitted`, and
    run.json's "time_budget")."""

    budget_s: float
    warmup_s: float  # from the first timed step to the trainer put back
    timed_steps: int
    step_s: float
    checkpoint_s: float
    grid_s: float
    evaluation_s: float
    planned_steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def readable(record: Any) -> bool:
        """A record as `to_dict` writes it: every field, a finite number, steps that took time."""
        names = {f.name for f in fields(Measured)}
        if not isinstance(record, dict) or set(record) != names:
            return False
        numbers = all(_number(v) for v in record.values())
        return numbers and record["step_s"] > 0

    def summary(self) -> str:
        return (
            f"Time budget {seconds_text(self.budget_s)}: {1 / self.step_s:.1f} steps/s over "
            f"{self.timed_steps} timed steps of a {self.warmup_s:.1f} s warm-up, so the run "
            f"is planned at {self.planned_steps:,} steps, which the learning-rate decay, "
            "ADA's ramp and the grids follow."
        )


@dataclass(frozen=True)
class Schedule:
    total: int  # the planned steps, which the learning rate, ADA's ramp and auto grids follow
    end: int  # where this session stops: the plan's end, or --stop-at before it
    images_per_step: int
    lr_decay: float  # the last fraction of the plan over which the learning rates fall to 0
    ada_ramp_images: float  # images in which ADA's p can go from 0 to 1
    grid_every: int
    checkpoint_every: int
    time_limit: float | None = None  # seconds of training after which this session stops
    time_budget: float | None = None  # --time-budget: the length was fitted to a time
    growth: Growth | None = None
    fitted: dict[str, Any] | None = None  # a --time-budget's warm-up: what it measured
    open: bool = False  # a --time-budget's, until its warm-up fixes the length

    def lr_factor(self, step: int) -> float:
        """1 until the plan's last `lr_decay`, then linearly down towards 0."""
        left, span = self.total - step, self.lr_decay * self.total
        return 1.0 if self.lr_decay == 0 or left >= span else max(left, 0) / span

    def stage(self, step: int) -> Any:
        """The growth stage of `step` (steps taken before it), None without --grow."""
        return self.growth.stage(step) if self.growth is not None else None

    def grid_due(self, step: int) -> bool:
        return step % self.grid_every == 0

    def checkpoint_due(self, step: int) -> bool:
        return step % self.checkpoint_every == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Schedule:
        growth = record.get("growth")
        return cls(**{**record, "growth": Growth(**growth) if growth else None})


@dataclass(frozen=True)
class Basis:
    """What a schedule is resolved from besides the config: the data, the processes, and
    for a resume the step it goes on from and the schedule it was on."""

    num_images: int
    world_size: int = 1
    step: int = 0
    before: Schedule | None = None
    ramp_given: bool = False  # --ada-ramp given on this resume: the ramp follows it


def images_per_step(config: Config, world_size: int) -> int:
    """Images drawn from the data per step: micro-batch x K x processes x D steps."""
    o = config.optim
    return o.batch_size * o.accumulation_steps * world_size * o.n_critic


def planned_steps(train: TrainConfig, num_images: int, per_step: int) -> int | None:
    """The run's length in steps; None for a --time-budget its warm-up has yet to fit."""
    if train.time_budget is not None:
        return train.planned_steps
    if train.max_steps is not None and train.epochs is None:
        return train.max_steps
    by_epochs = math.ceil((train.epochs or 1) * num_images / per_step)
    return min(by_epochs, train.max_steps) if train.max_steps is not None else by_epochs


def resolve(config: Config, basis: Basis, fitted: dict[str, Any] | None = None) -> Schedule:
    """The schedule of `config` on this data and these processes, continuing `basis.before`
    on a resume (the rule in this module's doc)."""
    t, o, m = config.train, config.optim, config.model
    per_step = images_per_step(config, basis.world_size)
    total = planned_steps(t, basis.num_images, per_step)
    before, is_open = basis.before, total is None
    total = STEPS_MAX if total is None else total
    ramp = max(o.ada_ramp * total * per_step, 1.0)
    if before is not None and not basis.ramp_given and not is_open:
        ramp = before.ada_ramp_images  # ADA's p keeps moving at the speed it had
    growth = None
    if m.grow:
        from gan.models.growth import levels

        laid = before.growth.planned if before is not None and before.growth else total
        growth = Growth(levels(m.grow_from), m.grow_share, m.grow_fade, laid)
    if fitted is None and before is not None and t.time_budget is not None:
        fitted = before.fitted  # the warm-up that fixed the plan it goes on with
    return Schedule(
        total=total,
        end=min(total, t.stop_at) if t.stop_at is not None else total,
        images_per_step=per_step,
        lr_decay=o.lr_decay,
        ada_ramp_images=ramp,
        grid_every=auto_interval(t.sample_every, total),
        checkpoint_every=t.checkpoint_every,
        time_limit=t.time_limit,
        time_budget=t.time_budget,
        growth=growth,
        fitted=fitted,
        open=is_open,
    )


def recorded(record: dict[str, Any] | None, saved: Config, basis: Basis) -> Schedule:
    """The schedule a checkpoint was on: its record, or for a checkpoint from before
    schedules were recorded whole (format 1, migrated), the one its config gives with
    what it did record (ADA's ramp, a warm-up's measurements). A record that is not one
    gan writes is one sentence."""
    try:
        if record is not None and "total" in record:
            schedule = Schedule.from_dict(record)
        else:
            schedule = replace(resolve(saved, basis), **(record or {}))
        if _sound(schedule):
            return schedule
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    raise GanError(
        "The resumed checkpoint's schedule is not one gan writes; resume from a checkpoint "
        "written by gan train."
    )


def _sound(s: Schedule) -> bool:
    """Whole steps and intervals, fractions within 0 and 1, a ramp of at least one image."""
    steps = (s.total, s.end, s.images_per_step, s.grid_every, s.checkpoint_every)
    if not all(type(v) is int and 1 <= v <= STEPS_MAX for v in steps):
        return False
    if not (_number(s.lr_decay) and 0 <= s.lr_decay <= 1 and _number(s.ada_ramp_images)):
        return False
    g = s.growth
    stages = g is None or (
        type(g.levels) is int
        and 0 <= g.levels <= 3
        and type(g.planned) is int
        and 1 <= g.planned <= STEPS_MAX
        and all(_number(v) and 0 <= v <= 1 for v in (g.share, g.fade))
    )
    fitted = s.fitted is None or Measured.readable(s.fitted)
    return stages and fitted and s.ada_ramp_images >= 1


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def continued(schedule: Schedule, before: Schedule | None, step: int) -> str | None:
    """What a resume on a new length changes of the learning rate, in a sentence (None if
    nothing): the decay follows the planned length, so a longer plan moves it later."""
    if before is None or schedule.open or before.lr_factor(step) == schedule.lr_factor(step):
        return None
    was, now = before.lr_factor(step), schedule.lr_factor(step)
    start = math.ceil(schedule.total - schedule.lr_decay * schedule.total)
    return (
        f"The plan is now {schedule.total:,} steps (was {before.total:,}): at step {step:,} "
        f"the learning rates are {now:.0%} of their values (were {was:.0%}), and decay from "
        f"step {max(start, 0):,} to 0 at step {schedule.total:,}."
    )
