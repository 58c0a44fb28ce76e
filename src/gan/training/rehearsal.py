"""Steps of a built run that leave no trace: what a --time-budget's warm-up times
(`gan.training.budget.Rehearsal` is the interface it sees).

Entered, a rehearsal remembers every part's state (weights, optimizers, data position,
random generators); left, it puts all of it back, so the run that follows starts exactly
where the rehearsal did.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gan import checkpoint, images
from gan.devices import synchronize
from gan.training.loop import take_step
from gan.training.parts import Parts
from gan.training.schedule import Schedule


class Rehearsal:
    def __init__(self, parts: Parts, schedule: Schedule, step: int) -> None:
        self.parts, self.schedule, self.step_at = parts, schedule, step
        self._saved: dict[str, Any] | None = None

    def __enter__(self) -> Rehearsal:
        self._saved = copy.deepcopy(self.parts.state_dict())
        return self

    def __exit__(self, *exc: object) -> None:
        self.parts.load_state_dict(self._saved)

    def step(self) -> None:
        take_step(self.parts, self.schedule, self.step_at)
        self.step_at += 1

    def synchronize(self) -> None:
        synchronize(self.parts.runtime.device)

    def output_seconds(self) -> tuple[float, float, float]:
        """Seconds of one checkpoint written, one grid drawn and saved, one evaluation; each
        the quicker of two (the first call also pays for imports and caches warming)."""
        parts, grids = self.parts, self.parts.grids
        generator = parts.runtime.sampling_generator
        with tempfile.TemporaryDirectory(prefix="gan-warmup-") as folder:
            where = Path(folder)
            saving = _quicker(lambda: checkpoint.save_atomic(parts.state_dict(), where / "c.pt"))
            drawing = 0.0
            if grids.is_main:
                picture = where / "g.png"
                drawing = _quicker(
                    lambda: images.save_grid(grids.render(generator), picture, grids.nrow)
                )
        scoring = 0.0
        if parts.reporter.evaluates:
            scoring = _quicker(lambda: parts.reporter.score(generator), times=1)
        return saving, drawing, scoring


def _quicker(work: Callable[[], Any], times: int = 2) -> float:
    seconds = []
    for _ in range(times):
        began = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - began)
    return min(seconds)
