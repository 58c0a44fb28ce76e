"""Seed 000's fully connected GAN: works at any image size."""

from __future__ import annotations

import math

from torch import nn

from gan.models.blocks import Dropout, HeadedDiscriminator, Reshape


class MLPGenerator(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        self.latent_shape = (latent_dim,)
        widths = [latent_dim, 128, 256, 512, 1024]
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(widths, widths[1:], strict=False)):
            layers.append(nn.Linear(d_in, d_out))
            if i > 0:  # no normalisation on the first block, as in the seed
                layers.append(nn.BatchNorm1d(d_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers += [nn.Linear(1024, math.prod(image_shape)), nn.Tanh(), Reshape(*image_shape)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class MLPDiscriminator(HeadedDiscriminator):
    batch_independent = True  # no batch statistics: reals and fakes may share a pass

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(image_shape), 512),
            nn.LeakyReLU(0.2, inplace=True),
            Dropout(0.4),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2, inplace=True),
            Dropout(0.4),
            nn.Linear(256, 1),
        )


def build(image_shape: tuple[int, int, int], latent_dim: int) -> tuple[nn.Module, nn.Module]:
    return MLPGenerator(image_shape, latent_dim), MLPDiscriminator(image_shape)
