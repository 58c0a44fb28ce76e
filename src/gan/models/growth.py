"""Coarse-to-fine training (`--grow`): G and D that start at a fraction of the image size
and grow to it in stages, each new resolution faded in (ProGAN, Karras et al. 2018).

A growing model has levels 0..L: level L is the full image, level k < L is the image at
1/2^(L-k) of its height and width. At level k < L G stops after the layers that make its
map at that resolution and turns it into an image with a 1x1 convolution and Tanh (its
`to_rgb[k]`); D takes an image of that size through its `from_rgb[k]` (a 1x1 convolution
and LeakyReLU) into the channels its own map has there, and runs its remaining layers. So
a step at level 0 of an 8x growth costs a small fraction of a full-size step, and what it
learns (the layout at coarse scale) is kept by the layers the larger levels share.

While level k fades in (`alpha` from 0 to 1), G's image is (1 - alpha) times level k-1's
image upsampled plus alpha times level k's, and D blends its level-k path with its
level-(k-1) path on the image pooled by 2 (ProGAN's fade-in); the trainer blends the
reals the same way. Where the stage is, is a function of the step (`schedule`), so a
resumed run continues it exactly.

In eval mode (grids, FID, `gan sample`, export) G always answers at full size: a coarse
image is upsampled (bilinearly), and the stage is kept in G's state dict (`_extra_state`),
so a checkpoint made at a low stage samples at full size too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gan.models.blocks import dcgan_init

Apply = Callable[[nn.Module, torch.Tensor], torch.Tensor]
GROW_FROM = (2, 4, 8)  # --grow-from: the first stage's fraction of the image size


def levels(grow_from: int) -> int:
    """The number of coarse levels of a growth from 1/grow_from of the size."""
    return int(math.log2(grow_from))


@dataclass(frozen=True)
class Stage:
    level: int  # 0 .. levels; `levels` is the full size
    alpha: float  # the fade of this level over the one below (1: faded in)

    def size(self, full: tuple[int, int], levels: int) -> tuple[int, int]:
        scale = 2 ** (levels - self.level)
        return full[0] // scale, full[1] // scale


def schedule(step: int, total: int, levels: int, share: float, fade: float) -> Stage:
    """The stage at `step` (steps taken before it) of a run planned at `total` steps.

    The first `share` of the plan is split evenly among the coarse levels 0..L-1; the full
    size starts after it and holds to the end. Each level after the first fades in over
    the first `fade` of its own segment (the full size over as long as a coarse segment)."""
    if levels == 0:
        return Stage(0, 1.0)
    segment = share * total / levels
    if segment <= 0:
        return Stage(levels, 1.0)
    level = min(int(step // segment), levels)
    if level == 0 or fade == 0:
        return Stage(level, 1.0)
    into = step - level * segment
    return Stage(level, min(1.0, into / (fade * segment)))


def downsample(images: torch.Tensor, stage: Stage, levels: int) -> torch.Tensor:
    """Real images at a stage's resolution (area averages), blended during a fade as G's
    images are: (1 - alpha) x the level below, upsampled, + alpha x this level."""
    scale = 2 ** (levels - stage.level)
    x = F.avg_pool2d(images, scale) if scale > 1 else images
    if stage.alpha < 1 and stage.level > 0:
        coarse = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(coarse, x, stage.alpha)
    return x


def to_full(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


class GrowingGenerator(nn.Module):
    """Wraps a G whose `net` (nn.Sequential) makes a map at each coarse level: `ends[k]`
    is the index of the layer after which level k's map (`channels[k]` channels) is done.

    The class-conditional wrapper runs `staged(z, apply)` with its own `apply`, so the
    BatchNorms it replaces inside `net` see the labels."""

    def __init__(
        self,
        generator: nn.Module,
        image_shape: tuple[int, int, int],
        ends: list[int],
        channels: list[int],
        levels: int,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.latent_shape = tuple(generator.latent_shape)
        self.image_shape = tuple(image_shape)
        self.levels = levels
        self.ends = list(ends[-levels:])
        out = image_shape[0]
        self.to_rgb = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, out, 1), nn.Tanh()) for c in channels[-levels:]
        )
        self.level, self.alpha = levels, 1.0  # built at full size: shape checks as without

    @property
    def net(self) -> nn.Sequential:
        return self.generator.net

    @net.setter
    def net(self, value: nn.Sequential) -> None:
        self.generator.net = value

    def set_stage(self, stage: Stage) -> None:
        self.level, self.alpha = stage.level, stage.alpha

    def get_extra_state(self) -> torch.Tensor:
        return torch.tensor([float(self.level), self.alpha], dtype=torch.float64)

    def set_extra_state(self, state: torch.Tensor) -> None:
        level, alpha = (float(v) for v in torch.as_tensor(state).flatten()[:2])
        if not (level.is_integer() and 0 <= level <= self.levels and 0 <= alpha <= 1):
            raise RuntimeError("the growth stage stored with this generator is out of range")
        self.level, self.alpha = int(level), alpha

    def staged(self, z: torch.Tensor, apply: Apply) -> torch.Tensor:
        net, level = self.generator.net, self.level
        stop = len(net) if level == self.levels else self.ends[level] + 1
        keep = self.ends[level - 1] if level > 0 and self.alpha < 1 else -1
        x, below = z, None
        for i in range(stop):
            x = apply(net[i], x)
            if i == keep:
                below = x
        for module in net.modules():  # maps stashed for layers this stage did not reach
            slot = getattr(module, "slot", None)
            if isinstance(slot, dict):
                slot.clear()
        image = x if level == self.levels else self.to_rgb[level](x)
        if below is not None:
            coarse = F.interpolate(self.to_rgb[level - 1](below), scale_factor=2, mode="nearest")
            image = torch.lerp(coarse, image, self.alpha)
        if not self.training:  # what is shown and scored is always the full size
            image = to_full(image, self.image_shape[1:])
        return image

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.staged(z, lambda layer, x: layer(x))


class GrowingDiscriminator(nn.Module):
    """Wraps a D whose `net` (nn.Sequential, ending in Flatten and the one-logit Linear)
    takes an image-sized map at each coarse level: `starts[k]` is the index of the layer
    that takes level k's map (`channels[k]` channels). The input's size says its level."""

    batch_independent = True

    def __init__(
        self,
        discriminator: nn.Module,
        image_shape: tuple[int, int, int],
        starts: list[int],
        channels: list[int],
        levels: int,
    ) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.batch_independent = getattr(discriminator, "batch_independent", False)
        self.image_shape = tuple(image_shape)
        self.levels = levels
        self.starts = list(starts[-levels:])
        c = image_shape[0]
        self.from_rgb = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, width, 1), nn.LeakyReLU(0.2)) for width in channels[-levels:]
        )
        self.alpha = 1.0

    def set_stage(self, stage: Stage) -> None:
        self.alpha = stage.alpha

    def _level(self, x: torch.Tensor) -> int:
        height = self.image_shape[1]
        for level in range(self.levels, -1, -1):
            if x.shape[-2] == height // 2 ** (self.levels - level):
                return level
        raise ValueError(f"no growth level takes images of height {x.shape[-2]}")

    def _entry(self, level: int) -> int:
        return 0 if level == self.levels else self.starts[level]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        net, level = self.discriminator.net, self._level(x)
        split = self.discriminator._split()
        start = self._entry(level)
        h = x if level == self.levels else self.from_rgb[level](x)
        if level > 0 and self.alpha < 1:
            below = self._entry(level - 1)
            for layer in net[start:below]:
                h = layer(h)
            h = torch.lerp(self.from_rgb[level - 1](F.avg_pool2d(x, 2)), h, self.alpha)
            start = below
        for layer in net[start:split]:
            h = layer(h)
        return h

    @property
    def head(self) -> nn.Module:
        return self.discriminator.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


def grow_pair(
    pair: tuple[nn.Module, nn.Module], image_shape: tuple[int, int, int], levels: int
) -> tuple[nn.Module, nn.Module]:
    """The growing forms of a model pair that declares where its levels are (`growth` on
    G: (ends, channels); on D: (starts, channels), coarsest first)."""
    generator, discriminator = pair
    g_ends, g_channels = generator.growth
    d_starts, d_channels = discriminator.growth
    if levels > len(g_ends):
        raise ValueError(f"this model grows from at most 1/{2 ** len(g_ends)} of the size")
    grown = (
        GrowingGenerator(generator, image_shape, g_ends, g_channels, levels),
        GrowingDiscriminator(discriminator, image_shape, d_starts, d_channels, levels),
    )
    dcgan_init(grown[0].to_rgb)
    dcgan_init(grown[1].from_rgb)
    return grown


def stages_of(*modules: nn.Module) -> list[nn.Module]:
    """The growing modules inside each of `modules` (wrapped by the conditional model,
    DDP, torch.compile or EMA), to be told the stage."""
    found = []
    for module in modules:
        if module is None:
            continue
        growing = (GrowingGenerator, GrowingDiscriminator)
        found += [m for m in module.modules() if isinstance(m, growing)]
    return found
