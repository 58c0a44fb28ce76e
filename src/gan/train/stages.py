"""The coarse-to-fine schedule of a run (`--grow`): which stage each step trains at, told
to G, its moving average and D before the step, with the reals brought to that size.

The stage is a function of the step and the planned steps alone (`gan.models.growth.
schedule`), so it needs no state of its own: a resumed run is at the stage it left."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from gan.models.growth import Stage, downsample, levels, schedule, stages_of


class Growth:
    def __init__(
        self,
        modules: list[nn.Module | None],
        grow_from: int,
        share: float,
        fade: float,
    ) -> None:
        self.modules = stages_of(*modules)
        self.size, self.levels = tuple(self.modules[0].image_shape[1:]), levels(grow_from)
        self.share, self.fade = share, fade
        self.total = 1  # the planned steps: set by the trainer's schedules

    def at(self, step: int) -> Stage:
        return schedule(step, self.total, self.levels, self.share, self.fade)

    def enter(self, step: int) -> Stage:
        """Tell every growing module the stage of `step` (steps taken before it)."""
        stage = self.at(step)
        for module in self.modules:
            module.set_stage(stage)
        return stage

    def draw(self, draw: Callable[[], Any], stage: Stage) -> Callable[[], Any]:
        """`draw`, its real micro-batches brought to the stage's size (blended in a fade)."""
        if stage.level == self.levels:
            return draw

        def staged():
            reals, latents, labels = draw()
            return [downsample(r, stage, self.levels) for r in reals], latents, labels

        return staged

    def values(self, stage: Stage) -> dict[str, float]:
        """What the log records of the stage: the height trained at and the fade."""
        height, _ = stage.size(self.size, self.levels)
        return {"grow_height": float(height), "grow_alpha": stage.alpha}

    def describe(self) -> str:
        h, w = self.size
        scales = [2 ** (self.levels - k) for k in range(self.levels + 1)]
        sizes = [f"{h // s}x{w // s}" for s in scales]
        segment = self.share * self.total / max(self.levels, 1)
        return (
            f"Coarse to fine: {' -> '.join(sizes)}, a stage every {segment:,.0f} steps, each "
            f"faded in over {self.fade * segment:,.0f}; full size from step "
            f"{round(self.levels * segment):,}. Until then grids and FID show the stage's "
            "images upsampled (bilinear) to full size."
        )
