"""The one way images are made from a generator: grids, `gan sample` and the metrics."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from gan.models.conditional import is_conditional


@torch.no_grad()
def generate(
    generator: nn.Module,
    count: int | None = None,
    *,
    seed: int = 0,
    latents: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    batch_size: int = 256,
    device: torch.device | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
    truncation: float | None = None,
) -> Iterator[torch.Tensor]:
    """Batches of images in [-1, 1] (float32, on `device`), G in eval mode meanwhile.

    Either `count` images from latents drawn batch by batch from a CPU generator seeded
    with `seed` (the same seed and batch size give the same images anywhere), or one image
    per row of `latents`. `autocast` (e.g. `gan.speed.autocast`) runs G in low precision;
    `truncation` draws the latents from a truncated normal (see `truncated_normal`).
    A conditional G makes image i of class `labels[i]`; without labels, classes are drawn
    as often as they occurred in its training data.
    """
    if (count is None) == (latents is None):
        raise ValueError("give either count or latents")
    conditional = is_conditional(generator)
    if labels is not None and not conditional:
        raise ValueError("labels need a conditional generator")
    device = device or next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    total = count if latents is None else len(latents)
    was_training = generator.training
    generator.eval()
    try:
        for start in range(0, total, batch_size):
            size = min(batch_size, total - start)
            if latents is None:
                z = truncated_normal((size, *generator.latent_shape), truncation, rng)
            else:
                z = latents[start : start + size]
            with autocast or contextlib.nullcontext():
                if not conditional:
                    images = generator(z.to(device))
                else:
                    y = labels[start : start + size] if labels is not None else None
                    y = draw_labels(generator, size, rng) if y is None else y
                    images = generator(z.to(device), y.to(device))
            yield images.float()
    finally:
        generator.train(was_training)


def generate_all(generator: nn.Module, count: int | None = None, **options) -> torch.Tensor:
    """`generate`'s batches joined into one tensor on the CPU."""
    return torch.cat([batch.cpu() for batch in generate(generator, count, **options)])


def draw_labels(generator: nn.Module, count: int, rng: torch.Generator) -> torch.Tensor:
    """Classes drawn as often as they occurred in the generator's training data."""
    weights = generator.class_weights.detach().float().cpu()
    return torch.multinomial(weights, count, replacement=True, generator=rng)


MAX_CLASS_ROWS = 32  # a grid with a row per class shows at most this many classes


def class_grid_rows(classes: int) -> int:
    return min(classes, MAX_CLASS_ROWS)


def class_row_labels(count: int, columns: int, classes: int) -> torch.Tensor:
    """Labels of `count` images laid out `columns` to a row, one class a row."""
    return torch.arange(count) // columns % classes


def class_rows(classes: int, count: int) -> tuple[torch.Tensor, int]:
    """A training grid with one class per row and at least `count` images: its labels
    and row length."""
    rows = class_grid_rows(classes)
    columns = max(math.ceil(math.sqrt(count)), math.ceil(count / rows))
    return class_row_labels(rows * columns, columns, classes), columns


def truncated_normal(
    shape: tuple[int, ...], psi: float | None, rng: torch.Generator, rounds: int = 1000
) -> torch.Tensor:
    """Standard normal draws; with `psi`, every component beyond +-psi is drawn again
    until it falls inside (BigGAN's truncation trick). Scaling z towards 0 instead would
    move it off the Gaussian shell these generators were trained on. After `rounds`
    redraws the few left are drawn by inverting the normal's CDF, so any psi > 0 ends."""
    z = torch.randn(shape, generator=rng)
    if psi is None:
        return z
    outside = z.abs() > psi
    for _ in range(rounds):
        if not bool(outside.any()):
            return z
        z[outside] = torch.randn(int(outside.sum()), generator=rng)
        outside = z.abs() > psi
    low = torch.special.ndtr(torch.tensor(-psi, dtype=torch.float64))
    u = low + (1 - 2 * low) * torch.rand(int(outside.sum()), generator=rng, dtype=torch.float64)
    z[outside] = torch.special.ndtri(u).clamp(-psi, psi).to(z.dtype)
    return z


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of `a` and `b` (any latent shape) at each t:
    the result keeps the norm a Gaussian latent of this size has."""
    flat_a, flat_b = a.flatten(1), b.flatten(1)
    cos = torch.nn.functional.cosine_similarity(flat_a, flat_b).clamp(-1, 1)
    omega = torch.acos(cos).view(-1, 1, 1)  # walks x 1 x 1
    t = t.view(1, -1, 1)
    sin = torch.sin(omega).clamp_min(1e-8)
    mix = torch.sin((1 - t) * omega) * flat_a[:, None] + torch.sin(t * omega) * flat_b[:, None]
    straight = (1 - t) * flat_a[:, None] + t * flat_b[:, None]  # (anti)parallel latents
    out = torch.where((omega < 1e-4) | (torch.pi - omega < 1e-4), straight, mix / sin)
    return out.view(len(a), -1, *a.shape[1:])


def walk_latents(
    walks: int, steps: int, latent_shape: tuple[int, ...], seed: int, truncation: float | None
) -> torch.Tensor:
    """`walks` x `steps` latents: each walk goes from one random latent to another."""
    rng = torch.Generator().manual_seed(seed)
    ends = truncated_normal((2, walks, *latent_shape), truncation, rng)
    return slerp(ends[0], ends[1], torch.linspace(0, 1, steps))
