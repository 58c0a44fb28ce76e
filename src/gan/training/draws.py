"""What each step trains on: K real micro-batches with their labels (for a conditional G),
K batches of latents, and with --grow the reals brought to the stage the schedule names.

Everything the loop would otherwise need to know of the model lives here: whether G takes
labels, its latent shape, and which of its modules grow. Its state is the position in the
data and the latents' generator, so a resumed run draws what the run it continues would.
"""

from __future__ import annotations

from typing import Any

import torch
from loguru import logger
from torch import nn

from gan import distributed
from gan.models.growth import Stage, downsample, stages_of
from gan.training.batches import DeviceBatches
from gan.training.step import Micro


class Draws:
    def __init__(
        self,
        batches: DeviceBatches,
        latent_shape: tuple[int, ...],
        accumulation: int,
        seed: int,
        dist: distributed.DistInfo | None = None,
        growing: list[nn.Module | None] | None = None,
        levels: int = 0,
    ) -> None:
        """`growing`: G, its moving average and D, told each step's stage (with --grow, of
        `levels` coarse levels); labels come with the reals where `batches` has them."""
        self.batches, self.latent_shape, self.accumulation = batches, latent_shape, accumulation
        self.dist = dist or distributed.DistInfo()
        # Latents come from their own generator, identical on every process, each taking
        # its slice: N processes x batch B draw exactly what one process x batch N*B would.
        self.rng = torch.Generator(device=batches.device).manual_seed(seed + 3)
        self.growing = stages_of(*growing) if growing and levels else []
        self.levels = levels
        self.size = tuple(batches.images.shape[2:])

    @property
    def batch_size(self) -> int:
        return self.batches.batch_size

    @property
    def position(self) -> tuple[int, int]:
        """(epoch, images served so far)."""
        return self.batches.epoch, self.batches.position

    def latents(self, count: int) -> torch.Tensor:
        dist, shape = self.dist, (count * self.dist.world_size, *self.latent_shape)
        z = torch.randn(shape, device=self.batches.device, generator=self.rng)
        return z[dist.rank * count : (dist.rank + 1) * count] if dist.world_size > 1 else z

    def enter(self, stage: Stage | None) -> dict[str, float]:
        """Tell every growing module the stage of the step about to be taken; what the log
        records of it (the height trained at and the fade), nothing without --grow."""
        if stage is None or not self.growing:
            return {}
        for module in self.growing:
            module.set_stage(stage)
        height, _ = stage.size(self.size, self.levels)
        return {"grow_height": float(height), "grow_alpha": stage.alpha}

    def draw(self, stage: Stage | None = None) -> Micro:
        """The next K real micro-batches (at the stage's size), as many latents, and the
        reals' labels (None entries for unlabelled data): fakes are made for them."""
        pairs = [self.batches.next_labelled() for _ in range(self.accumulation)]
        latents = [self.latents(self.batch_size) for _ in range(self.accumulation)]
        reals, labels = [x for x, _ in pairs], [y for _, y in pairs]
        if stage is not None and self.growing and stage.level < self.levels:
            reals = [downsample(x, stage, self.levels) for x in reals]
        return reals, latents, labels

    def state_dict(self) -> dict[str, Any]:
        epoch, seen = self.position
        return {"epoch": epoch, "images_seen": seen, "latent_rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches.position = int(state["images_seen"])
        try:
            if state.get("latent_rng") is not None:
                self.rng.set_state(state["latent_rng"])
        except RuntimeError:  # a checkpoint from another kind of device
            logger.warning(
                "Random states were not restored (the checkpoint is from another device)."
            )
