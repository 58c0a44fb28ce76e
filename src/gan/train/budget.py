"""--time-budget: a warm-up measures the step rate, then the run's plan is fixed to fit.

The warm-up trains a few steps. The first are start-up costs (allocation, compilation,
caches) and, like loading the data, stay outside the budget; the budget's clock starts
after them. It times the next steps and one of each periodic output (a checkpoint, a
grid, an evaluation), then puts the trainer back exactly as it was: the run that follows
is the step-planned run of the length found, so `--planned-steps N` (as config.toml
records it) replays it exactly.
"""

from __future__ import annotations

import copy
import itertools
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from gan import checkpoint, distributed, images
from gan.config.values import auto_interval, seconds_text
from gan.devices import synchronize
from gan.errors import GanError
from gan.train import plan as plans
from gan.train.loop import Trainer

# First steps, not timed: allocation, compilation, caches and oneDNN's kernels warming
# (a convolutional model's first second of steps ran slower than the rest).
SKIPPED, SKIPPED_S = 3, 1.0
SHARE, SHORTEST, LONGEST = 0.03, 0.5, 15.0  # the timed part: 3% of the budget, in seconds
FEWEST = 12  # timed steps at least (lazy R1 and ADA every few steps average out)
MARGIN = 0.96  # of the time left: a 2-core VM here ran 10-15% slower or faster for a while


@dataclass(frozen=True)
class Measured:
    """What the warm-up found and what it planned (run.json's "time_budget")."""

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

    def summary(self) -> str:
        return (
            f"Time budget {seconds_text(self.budget_s)}: {1 / self.step_s:.1f} steps/s over "
            f"{self.timed_steps} timed steps of a {self.warmup_s:.1f} s warm-up, so the run "
            f"is planned at {self.planned_steps:,} steps, which the learning-rate decay, "
            "ADA's ramp and the grids follow."
        )


def fix_plan(trainer: Trainer, plan: plans.Plan) -> tuple[plans.Plan, Measured]:
    """Warm up, plan the steps that fit the rest of the budget, and replan the trainer."""
    budget = plan.config.train.time_budget
    assert budget is not None and plan.config.train.planned_steps is None
    logger.info("Measuring the step rate for --time-budget {} ...", seconds_text(budget))
    before = copy.deepcopy(trainer.state_dict())
    begun = time.perf_counter()  # start-up costs, outside the budget like loading the data
    for skipped in itertools.count(1):
        trainer.train_step()
        if skipped >= SKIPPED and time.perf_counter() - begun >= SKIPPED_S:
            break
    synchronize(trainer.runtime.device)
    started = time.perf_counter()
    step_s, timed = _time_steps(trainer, budget, started)
    outputs = _time_outputs(trainer)
    trainer.load_state_dict(before)  # the run starts from where the warm-up did
    trainer.latest = None
    warmup = time.perf_counter() - started
    steps = _steps_that_fit(trainer, (budget - warmup) * MARGIN, step_s, outputs)
    dist = trainer.runtime.dist
    steps = min(distributed.gather(steps, dist))  # every process trains the same plan
    if steps < 1:
        raise _too_short(budget, warmup)
    measured = Measured(budget, warmup, timed, step_s, *outputs, steps)
    plan = plans.budgeted(plan, steps)
    trainer.replan(plan.config)
    trainer.budget = measured.to_dict()
    return plan, measured


def _time_steps(trainer: Trainer, budget: float, started: float) -> tuple[float, int]:
    device = trainer.runtime.device
    wanted = min(max(SHARE * budget, SHORTEST), LONGEST)
    timed, begun = 0, time.perf_counter()
    while timed < FEWEST or time.perf_counter() - begun < wanted:
        trainer.train_step()
        timed += 1
        if timed % FEWEST == 0:
            synchronize(device)
        if time.perf_counter() - started > budget / 2:
            raise _too_short(budget, time.perf_counter() - started)
    synchronize(device)
    return (time.perf_counter() - begun) / timed, timed


def _time_outputs(trainer: Trainer) -> tuple[float, float, float]:
    """Seconds of one checkpoint written, one grid drawn and saved, one evaluation; each
    the quicker of two (the first call also pays for imports and caches warming)."""
    generator, grid, reporter = trainer.runtime.sampling_generator, trainer.grids, trainer.reporter
    with tempfile.TemporaryDirectory(prefix="gan-warmup-") as folder:
        where = Path(folder)
        saving = _quicker(lambda: checkpoint.save_atomic(trainer.state_dict(), where / "c.pt"))
        drawing = 0.0
        if grid.is_main:
            draw = lambda: images.save_grid(grid.render(generator), where / "g.png", grid.nrow)  # noqa: E731
            drawing = _quicker(draw)
    scoring = 0.0
    if reporter.eval_every and reporter.evaluator is not None and reporter.dist.is_main:
        scoring = _quicker(lambda: reporter.evaluator(generator), times=1)  # seconds each
    return saving, drawing, scoring


def _quicker(work: Callable[[], Any], times: int = 2) -> float:
    seconds = []
    for _ in range(times):
        began = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - began)
    return min(seconds)


def _steps_that_fit(
    trainer: Trainer, seconds: float, step_s: float, outputs: tuple[float, float, float]
) -> int:
    """The most steps whose training and periodic outputs take `seconds` at most."""
    t = trainer.config.train
    checkpoint_s, grid_s, evaluation_s = outputs

    def cost(steps: int) -> float:
        grids = steps // auto_interval(t.sample_every, steps) + 2  # and the reals, the last
        saves = steps // t.checkpoint_every + 1
        evaluations = steps // t.eval_every + 1 if t.eval_every else 0
        return steps * step_s + saves * checkpoint_s + grids * grid_s + evaluations * evaluation_s

    low, high = 0, max(math.floor(seconds / step_s), 0)  # cost(low) fits; search up to high
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if cost(middle) <= seconds else (low, middle - 1)
    return low


def _too_short(budget: float, spent: float) -> GanError:
    return GanError(
        f"The warm-up took {spent:.1f} s of the {seconds_text(budget)} --time-budget, leaving "
        "too little to train; give a longer budget, or plan by --max-steps."
    )
