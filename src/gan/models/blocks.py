"""Layers and initialisation shared by the model families."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Reshape(nn.Module):
    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Dropout(nn.Dropout):
    """nn.Dropout, about twice as fast on the CPU (forward and backward): the mask comes
    from uniform draws (`torch.rand`, vectorised) rather than `bernoulli_`, whose CPU
    kernel draws element by element, and took a fifth of the MNIST default's step. The
    same distribution and the same generator (the global one, in the checkpoint); other
    devices keep PyTorch's fused kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training, self.inplace)
        if self.p == 1:
            return x * 0
        mask = torch.rand(x.shape, device=x.device) >= self.p
        return x * mask.to(x.dtype).mul_(1 / (1 - self.p))


class HeadedDiscriminator(nn.Module):
    """A D whose `net` (nn.Sequential) ends in its one-logit linear layer, perhaps after a
    dropout: `features` (penultimate, before that dropout) and `head` (the dropout and the
    linear layer) split it there, as a projection discriminator needs."""

    def _split(self) -> int:
        end = len(self.net) - 1
        return end - 1 if isinstance(self.net[end - 1], nn.Dropout) else end

    def features(self, x):
        for layer in self.net[: self._split()]:
            x = layer(x)
        return x

    @property
    def head(self) -> nn.Module:
        return self.net[self._split() :]

    def forward(self, x):
        return self.net(x).squeeze(1)


def projection(latent_dim: int, channels: int, height: int, width: int) -> list[nn.Module]:
    """Latent -> Linear to channels x height x width -> BatchNorm, ReLU."""
    return [
        nn.Linear(latent_dim, channels * height * width, bias=False),
        Reshape(channels, height, width),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    ]


def up_block(c_in: int, c_out: int) -> list[nn.Module]:
    """Nearest 2x upsampling, 3x3 conv, BatchNorm, ReLU (BatchNorm a direct element)."""
    return [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


def upsampling_generator(
    image_shape: tuple[int, int, int],
    latent_dim: int,
    widths: tuple[int, ...],
    refine: bool = False,
) -> list[nn.Module]:
    """Latent -> Linear to widths[0] x (H/2^k) x (W/2^k) -> BatchNorm, ReLU -> (with
    `refine`, one 3x3 conv + BatchNorm + ReLU there) -> k nearest-upsample + 3x3 conv +
    BatchNorm + ReLU blocks through `widths` -> 3x3 conv, Tanh (k = len(widths) - 1).
    Every BatchNorm is a direct element, as class conditioning needs."""
    channels, height, width = image_shape
    scale = 2 ** (len(widths) - 1)
    c0 = widths[0]
    layers = projection(latent_dim, c0, height // scale, width // scale)
    if refine:
        layers += [nn.Conv2d(c0, c0, 3, padding=1, bias=False), nn.BatchNorm2d(c0)]
        layers.append(nn.ReLU(inplace=True))
    for c_in, c_out in zip(widths, widths[1:], strict=False):
        layers += up_block(c_in, c_out)
    return [*layers, nn.Conv2d(widths[-1], channels, 3, padding=1), nn.Tanh()]


class UpsamplingGenerator(nn.Module):
    """G of `upsampling_generator`'s layers, run on a latent vector (the `mri` and `resgan`
    generators; `refine` adds resgan's 3x3 convolution at 1/8)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        widths: tuple[int, ...],
        refine: bool = False,
    ) -> None:
        super().__init__()
        self.latent_shape = (latent_dim,)
        self.net = nn.Sequential(*upsampling_generator(image_shape, latent_dim, widths, refine))

    def forward(self, z):
        return self.net(z)


def dcgan_init(module: nn.Module) -> None:
    """Radford et al. 2015: conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial size after a convolution (or pooling with kernel == stride)."""
    return math.floor((size + 2 * padding - kernel) / stride) + 1
