"""The one way images are made from a generator: grids, `gan sample` and the metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


@torch.no_grad()
def generate(
    generator: nn.Module,
    count: int | None = None,
    *,
    seed: int = 0,
    latents: torch.Tensor | None = None,
    batch_size: int = 256,
    device: torch.device | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
) -> Iterator[torch.Tensor]:
    """Batches of images in [-1, 1] (float32, on `device`), G in eval mode meanwhile.

    Either `count` images from latents drawn batch by batch from a CPU generator seeded
    with `seed` (the same seed and batch size give the same images anywhere), or one image
    per row of `latents`. `autocast` (e.g. `gan.speed.autocast`) runs G in low precision.
    """
    if (count is None) == (latents is None):
        raise ValueError("give either count or latents")
    device = device or next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    total = count if latents is None else len(latents)
    was_training = generator.training
    generator.eval()
    try:
        for start in range(0, total, batch_size):
            size = min(batch_size, total - start)
            if latents is None:
                z = torch.randn(size, *generator.latent_shape, generator=rng)
            else:
                z = latents[start : start + size]
            with autocast or contextlib.nullcontext():
                images = generator(z.to(device))
            yield images.float()
    finally:
        generator.train(was_training)


def generate_all(generator: nn.Module, count: int | None = None, **options) -> torch.Tensor:
    """`generate`'s batches joined into one tensor on the CPU."""
    return torch.cat([batch.cpu() for batch in generate(generator, count, **options)])
