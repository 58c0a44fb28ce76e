"""--time-budget, the plan's last phase: a warm-up measures the step rate, and the schedule
is fixed to the steps that fit.

The warm-up trains a few steps of a `Rehearsal` it is given (the built run, which it sees
through nothing else). The first are start-up costs (allocation, compilation, caches) and,
like loading the data, stay outside the budget; the budget's clock starts after them. It
times the next steps and one of each periodic output (a checkpoint, a grid, an
evaluation); the rehearsal then puts the run back exactly as it was: the run that follows
is the step-planned run of the length found, so `--planned-steps N` (as config.toml
records it) replays it exactly. On a resume, the steps that fit follow the step resumed.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Protocol

from loguru import logger

from gan import distributed
from gan.config import TrainConfig
from gan.config.values import auto_interval, seconds_text
from gan.errors import GanError
from gan.training import plan as plans
from gan.training.schedule import Measured

# First steps, not timed: allocation, compilation, caches and oneDNN's kernels warming
# (a convolutional model's first second of steps ran slower than the rest).
SKIPPED, SKIPPED_S = 3, 1.0
SHARE, SHORTEST, LONGEST = 0.03, 0.5, 15.0  # the timed part: 3% of the budget, in seconds
FEWEST = 12  # timed steps at least (lazy R1 and ADA every few steps average out)
MARGIN = 0.96  # of the time left: a 2-core VM here ran 10-15% slower or faster for a while


class Rehearsal(Protocol):
    """Steps of the built run that leave no trace (`gan.training.rehearsal`): entered, it
    remembers the run's state; left, it puts it back."""

    def __enter__(self) -> Rehearsal: ...

    def __exit__(self, *exc: object) -> None: ...

    def step(self) -> None: ...

    def synchronize(self) -> None: ...

    def output_seconds(self) -> tuple[float, float, float]: ...


def fit(plan: plans.Plan, rehearsal: Rehearsal, dist: distributed.DistInfo) -> plans.Plan:
    """Warm up, and the plan with the steps that fit the rest of the budget."""
    train = plan.config.train
    budget = train.time_budget
    assert budget is not None and plan.schedule is not None and plan.schedule.open
    logger.info("Measuring the step rate for --time-budget {} ...", seconds_text(budget))
    with rehearsal:  # the run goes on from where the warm-up began
        begun = time.perf_counter()  # start-up costs, outside the budget like the data's
        for skipped in itertools.count(1):
            rehearsal.step()
            if skipped >= SKIPPED and time.perf_counter() - begun >= SKIPPED_S:
                break
        rehearsal.synchronize()
        started = time.perf_counter()
        step_s, timed = _time_steps(rehearsal, budget, started)
        outputs = rehearsal.output_seconds()
    warmup = time.perf_counter() - started
    steps = _steps_that_fit(train, (budget - warmup) * MARGIN, step_s, outputs)
    steps = min(distributed.gather(steps, dist))  # every process trains the same plan
    if steps < 1:
        raise _too_short(budget, warmup)
    planned = plan.basis.step + steps if plan.basis is not None else steps
    measured = Measured(budget, warmup, timed, step_s, *outputs, planned)
    return plans.budgeted(plan, measured.to_dict())


def _time_steps(rehearsal: Rehearsal, budget: float, started: float) -> tuple[float, int]:
    wanted = min(max(SHARE * budget, SHORTEST), LONGEST)
    timed, begun = 0, time.perf_counter()
    while timed < FEWEST or time.perf_counter() - begun < wanted:
        rehearsal.step()
        timed += 1
        if timed % FEWEST == 0:
            rehearsal.synchronize()
        if time.perf_counter() - started > budget / 2:
            raise _too_short(budget, time.perf_counter() - started)
    rehearsal.synchronize()
    return (time.perf_counter() - begun) / timed, timed


def _steps_that_fit(
    train: TrainConfig, seconds: float, step_s: float, outputs: tuple[float, float, float]
) -> int:
    """The most steps whose training and periodic outputs take `seconds` at most."""
    checkpoint_s, grid_s, evaluation_s = outputs

    def cost(steps: int) -> float:
        grids = steps // auto_interval(train.sample_every, steps) + 2  # and the reals, the last
        saves = steps // train.checkpoint_every + 1
        evaluations = steps // train.eval_every + 1 if train.eval_every else 0
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
