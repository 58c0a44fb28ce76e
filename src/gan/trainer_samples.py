"""The Trainer's sample side: real and generated grids from latents drawn once per run."""

from __future__ import annotations

import torch
from torch import nn

from gan import images
from gan.devices import release_cached_memory


class SamplesMixin:
    """Grids for `gan.trainer.Trainer`: reals.png at the start, samples-<step>.png later."""

    def _reals_for_grid(self) -> torch.Tensor:
        count = len(self.fixed_latents)
        gen = torch.Generator().manual_seed(self.config.train.seed + 2)
        pick = torch.randperm(self.batches.num_images, generator=gen)[:count]
        return self.batches.images[pick.to(self.batches.images.device)].float() / 127.5 - 1.0

    @property
    def sampling_generator(self) -> nn.Module:
        """The EMA of G when there is one: smoother samples than the raw weights."""
        return self.G_ema.module if self.G_ema is not None else self.G

    @torch.no_grad()
    def generate(self, latents: torch.Tensor) -> torch.Tensor:
        generator = self.sampling_generator
        was_training = generator.training
        generator.eval()
        try:
            return generator(latents)
        finally:
            generator.train(was_training)

    def save_samples(self) -> None:
        if not self.dist.is_main:
            return
        fakes = self.generate(self.fixed_latents)
        self.tracker.image("samples", images.grid(fakes), self.step)
        if self.paths is not None:
            images.save_grid(fakes, self.paths.assets / f"samples-{self.step:07d}.png")
        release_cached_memory(self.device)
