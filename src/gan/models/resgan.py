"""A pair for small data sets (brain MRI slices, microscopy, 64x64 images): an upsampling
G with BatchNorm and a residual D without it.

G projects the latent to a (H/8)x(W/8) map, refines it with one 3x3 conv (cheap capacity
for the global layout), then three nearest-upsample + 3x3 conv + BatchNorm + ReLU blocks
and a 3x3 conv + Tanh to the image. Every layer of G is a direct child of `G.net` taking
one tensor, so the class-conditional wrapper can replace its BatchNorms. (FastGAN's
skip-layer excitation needs two tensors per layer, so it is left out.)

D has no batch statistics: four residual blocks, each halving the resolution (rounding
up), the sum of a main branch (3x3 stride-2 conv, then a 3x3 conv at the lower
resolution) and a skip branch (2x2 average pooling, 1x1 conv), scaled by 1/sqrt(2); then
one logit from the flattened last map. Both main convolutions run at the lower resolution:
a 3x3 conv at the input resolution first would cost about twice as much on CPU, memory
traffic at full resolution being what dominates there. Spectral norm, where wanted, is
added from outside (`--spectral-norm`).
"""

from __future__ import annotations

import math

from torch import nn

from gan.models import require_multiple
from gan.models.blocks import HeadedDiscriminator, UpsamplingGenerator, conv_out, dcgan_init

# Widths chosen by measurement: a training step (batch 32, 1x200x160, one AMD EPYC core)
# costs ~1.4x the `mri` model's in fp32 and ~1.5x in bf16; D widths (32, 64, 128, 256)
# cost ~1.6x. Most of G's time is at full resolution, so G widens only at 1/8.
_G_WIDTHS = (128, 64, 32, 16)  # channels at 1/8, 1/4, 1/2 and full resolution
_D_WIDTHS = (32, 64, 96, 192)  # channels after each halving


class ResidualDown(nn.Module):
    """Halves H and W (rounding up): (main(x) + skip(x)) / sqrt(2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        )
        # ceil_mode: an odd side (25 at 200/8) gives 13 rows, as the stride-2 conv does;
        # the last window then averages the pixels that exist.
        self.skip = nn.Sequential(
            nn.AvgPool2d(2, ceil_mode=True), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x):
        return (self.main(x) + self.skip(x)) * (1 / math.sqrt(2))


def residual_downs(
    shape: tuple[int, int, int], widths: tuple[int, ...]
) -> tuple[list[nn.Module], tuple[int, int, int]]:
    """A `ResidualDown` per width from a `shape` (C, H, W) input, and the output's shape."""
    c_in, h, w = shape
    layers: list[nn.Module] = []
    for c_out in widths:
        layers.append(ResidualDown(c_in, c_out))
        c_in, h, w = c_out, conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
    return layers, (c_in, h, w)


class ResGANDiscriminator(HeadedDiscriminator):
    batch_independent = True  # no batch statistics: R1, WGAN-GP and joint passes allowed

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        layers, (c_in, h, w) = residual_downs(image_shape, _D_WIDTHS)
        layers += [
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
            nn.Linear(c_in * h * w, 1),
        ]
        self.net = nn.Sequential(*layers)


def build(image_shape: tuple[int, int, int], latent_dim: int) -> tuple[nn.Module, nn.Module]:
    require_multiple("resgan", image_shape, 8, 16)
    pair = (
        UpsamplingGenerator(image_shape, latent_dim, _G_WIDTHS, refine=True),
        ResGANDiscriminator(image_shape),
    )
    for module in pair:
        dcgan_init(module)
    return pair
