"""The reporter: interval means to TensorBoard and history.jsonl, FID, and the best FID."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gan import distributed
from gan.config import TrainConfig
from gan.errors import Diverged
from gan.runs.tracking import Log, NullLog
from gan.training.step import StepStats

Evaluator = Callable[[nn.Module], dict[str, Any]]


class Reporter:
    """Sums the step statistics as device tensors and reports their means every
    `log_every` steps (the loop's only host sync); scores G every `eval_every` steps.

    Its state is the best FID so far; `take_new_best` says whether an evaluation beat it
    since it was last asked.
    """

    def __init__(
        self,
        images_per_step: int,
        log_every: int,
        log: Log | None = None,
        evaluator: Evaluator | None = None,
        eval_every: int | None = None,
        dist: distributed.DistInfo | None = None,
        shown: str = "probability",
    ) -> None:
        self.images_per_step, self.log_every, self.eval_every = (
            images_per_step,
            log_every,
            eval_every,
        )
        self.log = log or NullLog()
        self.evaluator = evaluator  # runs on rank 0 only
        self.dist = dist or distributed.DistInfo()
        self.panel = "prob" if shown == "probability" else "score"  # what D's outputs are
        self.best_fid: float | None = None
        self.last_fid: float | None = None  # of this session's evaluations
        self.new_best = self.evaluated = False
        self.last: dict[str, Any] = {}
        self._rates: dict[str, float] = {}  # the latest step's rates (learning, growth)
        self._sums: dict[str, torch.Tensor] = {}
        self._steps, self._start, self._total = 0, time.perf_counter(), 0

    @classmethod
    def from_config(
        cls,
        train: TrainConfig,
        images_per_step: int,
        log: Log | None,
        evaluator: Evaluator | None,
        dist: distributed.DistInfo,
        shown: str,
    ) -> Reporter:
        """`shown`: what D outputs under the run's loss (probability or score)."""
        every = train.eval_every
        return cls(images_per_step, train.log_every, log, evaluator, every, dist, shown)

    def begin(self) -> None:
        """The first window's clock starts with the loop (not at set-up or a warm-up)."""
        self._start = time.perf_counter()

    def state_dict(self) -> dict[str, Any]:
        return {"best_fid": self.best_fid}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_fid = state.get("best_fid")

    @property
    def evaluates(self) -> bool:
        """This process scores G during training."""
        return bool(self.eval_every) and self.evaluator is not None and self.dist.is_main

    def score(self, generator: nn.Module) -> dict[str, Any]:
        """One evaluation of `generator`, recorded nowhere (the time-budget warm-up times it)."""
        return self.evaluator(generator) if self.evaluates else {}

    def take_new_best(self) -> bool:
        """Whether an evaluation beat the best FID since the last time this was asked."""
        best, self.new_best = self.new_best, False
        return best

    def after_step(
        self,
        stats: StepStats,
        step: int,
        total: int,
        position: tuple[int, int],
        generator: nn.Module,
        rates: dict[str, float] | None = None,
    ) -> dict[str, Any] | None:
        """Add one step's statistics; at a logging step, report and return the record.

        `total` is where the session ends; `position` is (epoch, images seen); `generator`
        is what an evaluation scores; `rates` are the step's learning rates (and growth
        stage), which the record shows."""
        for name, value in vars(stats).items():
            if value is not None:
                self._sums[name] = self._sums[name] + value if name in self._sums else value
        self._steps += 1
        self._total, self._rates = total, rates or {}
        self.evaluated = bool(self.eval_every) and (step % self.eval_every == 0 or step == total)
        if not (step % self.log_every == 0 or step == total or self.evaluated):
            return None
        now = time.perf_counter()  # the window's speed leaves the evaluation out
        scores = self._evaluate(generator) if self.evaluated else {}
        return self._report(step, position, scores, now - self._start)

    def flush(self, step: int, position: tuple[int, int]) -> None:
        """Report the steps since the last record (a run that stops between records)."""
        if self._steps:
            self._report(step, position, {}, time.perf_counter() - self._start)

    def _evaluate(self, generator: nn.Module) -> dict[str, Any]:
        if self.evaluator is None or not self.dist.is_main:
            return {}
        scores = self.evaluator(generator)
        fid = scores.get("fid")
        self.last_fid = fid if fid is not None else self.last_fid
        if fid is not None and (self.best_fid is None or fid < self.best_fid):
            self.best_fid, self.new_best = fid, True
        return scores

    def _report(
        self, step: int, position: tuple[int, int], scores: dict[str, Any], seconds: float
    ) -> dict[str, Any]:
        names, steps = list(self._sums), self._steps
        totals = distributed.mean(torch.stack([self._sums[n] for n in names]), self.dist)
        values = {name: total / steps for name, total in zip(names, totals.tolist(), strict=True)}
        if not (math.isfinite(values["d_loss"]) and math.isfinite(values["g_loss"])):
            raise Diverged(step - steps + 1, step)
        record = {
            "step": step,
            "epoch": position[0],
            "images_seen": position[1],
            **values,
            "images_per_s": steps * self.images_per_step / max(seconds, 1e-9),
            "seconds_left": max(self._total - step, 0) * seconds / steps,  # at this rate
            **self._rates,
            **scores,
            "time": time.time(),
        }
        tags = {"loss/d": "d_loss", "loss/g": "g_loss", f"{self.panel}/d_real": "d_real"}
        tags |= {f"{self.panel}/d_fake": "d_fake", "perf/images_per_s": "images_per_s"}
        tags["perf/seconds_left"] = "seconds_left"
        if "augment_p" in record:
            tags["augment/p"] = "augment_p"
        tags |= {
            f"growth/{name[5:]}" if name.startswith("grow_") else f"optim/{name}": name
            for name in self._rates
        }
        tags |= {f"metrics/{name}": name for name in scores}
        self.log.scalars(step, {tag: record[key] for tag, key in tags.items()})
        self.log.history(record)
        self._sums, self._steps, self._start = {}, 0, time.perf_counter()
        self.last = record
        return record
