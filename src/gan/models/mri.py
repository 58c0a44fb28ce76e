"""Seed 002's brain-MRI GAN: linear projection, upsample+conv blocks, to 1x200x160 by default."""

from __future__ import annotations

from torch import nn

from gan.models import require_multiple
from gan.models.blocks import HeadedDiscriminator, UpsamplingGenerator, conv_out, dcgan_init

_G_WIDTHS = (128, 64, 32, 16)  # channels at 1/8, 1/4, 1/2 and full resolution
_D_WIDTHS = (32, 64, 128, 256)


class MRIDiscriminator(HeadedDiscriminator):
    batch_independent = True  # no batch statistics: reals and fakes may share a pass

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, h, w = image_shape
        layers: list[nn.Module] = []
        c_in = channels
        for i, c_out in enumerate(_D_WIDTHS):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            if i > 0:
                layers.append(nn.Dropout2d(0.25))
            c_in = c_out
            h, w = conv_out(h, 4, 2, 1), conv_out(w, 4, 2, 1)
        layers += [nn.Flatten(), nn.Linear(c_in * h * w, 1)]
        self.net = nn.Sequential(*layers)


def build(image_shape: tuple[int, int, int], latent_dim: int) -> tuple[nn.Module, nn.Module]:
    require_multiple("mri", image_shape, 8, 16)
    pair = (
        UpsamplingGenerator(image_shape, latent_dim, _G_WIDTHS, refine=False),
        MRIDiscriminator(image_shape),
    )
    for module in pair:
        dcgan_init(module)
    return pair
