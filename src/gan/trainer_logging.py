"""The Trainer's reporting side: interval means to TensorBoard and history.jsonl, FID."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from gan import distributed


class LoggingMixin:
    """Logging for `gan.trainer.Trainer`; the only host syncs of the loop happen here."""

    def _evaluate(self) -> dict[str, Any]:
        """FID of the sampling generator; a new best is checkpointed and kept as best.pt."""
        if self.evaluator is None or not self.dist.is_main:
            return {}
        scores = self.evaluator(self.sampling_generator)
        fid = scores.get("fid")
        if fid is not None and (self.best_fid is None or fid < self.best_fid):
            self.best_fid = fid
            self._new_best = True
        return scores

    def _log(
        self,
        sums: dict[str, torch.Tensor],
        steps: int,
        seconds: float,
        scores: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Averages over the steps since the last log; the only host sync in the loop."""
        names = list(sums)
        totals = distributed.mean(torch.stack([sums[n] for n in names]), self.dist).tolist()
        values = {name: total / steps for name, total in zip(names, totals, strict=True)}
        if not (math.isfinite(values["d_loss"]) and math.isfinite(values["g_loss"])):
            self._diverged(self.step - steps + 1)
        record = {
            "step": self.step,
            "epoch": self.batches.epoch,
            "images_seen": self.batches.position,
            **values,
            "images_per_s": steps * self.images_per_step / max(seconds, 1e-9),
            **(scores or {}),
            "time": time.time(),
        }
        self.tracker.scalars(
            self.step,
            {
                "loss/d": record["d_loss"],
                "loss/g": record["g_loss"],
                "prob/d_real": record["d_real"],
                "prob/d_fake": record["d_fake"],
                "perf/images_per_s": record["images_per_s"],
            },
        )
        for name, value in (scores or {}).items():
            self.tracker.scalars(self.step, {f"metrics/{name}": value})
        self.tracker.history(record)
        return record
