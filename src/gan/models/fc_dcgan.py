"""Seed 001's small GAN: a linear projection and two transposed convolutions."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from gan.models import require_multiple
from gan.models.blocks import Reshape, conv_out


class FCGenerator(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        channels, height, width = image_shape
        h, w = height // 4, width // 4  # 7x7 for 28x28: 7 -> 16 -> 34 -> 28
        self.latent_shape = (latent_dim,)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 64 * h * w),
            nn.ReLU(inplace=True),
            Reshape(64, h, w),
            nn.ConvTranspose2d(64, 32, 4, stride=2),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(32, 16, 4, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, channels, 7),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z)


class FCDiscriminator(nn.Module):
    """The classic MNIST classifier shape (conv-pool-conv-dropout-pool-fc-fc) with one logit."""

    batch_independent = True  # no batch statistics: reals and fakes may share a pass

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = image_shape
        h = conv_out(conv_out(conv_out(conv_out(height, 5), 2, 2), 5), 2, 2)
        w = conv_out(conv_out(conv_out(conv_out(width, 5), 2, 2), 5), 2, 2)
        self.conv1 = nn.Conv2d(channels, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(20 * h * w, 50)
        self.fc_drop = nn.Dropout()
        self.fc2 = nn.Linear(50, 1)

    @property
    def head(self) -> nn.Module:
        return nn.Sequential(self.fc_drop, self.fc2)

    def features(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x):
        return self.fc2(self.fc_drop(self.features(x))).squeeze(1)


def build(image_shape: tuple[int, int, int], latent_dim: int) -> tuple[nn.Module, nn.Module]:
    require_multiple("fc-dcgan", image_shape, 4, 16)
    return FCGenerator(image_shape, latent_dim), FCDiscriminator(image_shape)
