"""DCGANs for small images: seed 003 exactly (`dcgan`) and the MNIST default (`dcgan-proj`)."""

from __future__ import annotations

from torch import nn

from gan.models import require_multiple
from gan.models.blocks import HeadedDiscriminator, Reshape, conv_out, dcgan_init


class DCGANDiscriminator(HeadedDiscriminator):
    """Seed 003's D: three stride-2 convolutions, BatchNorm on the second, then one logit."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = image_shape
        h, w = height, width
        for _ in range(3):
            h, w = conv_out(h, 4, 2, 1), conv_out(w, 4, 2, 1)
        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(128, 256, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
            nn.Linear(256 * h * w, 1),
        )


class SpatialLatentGenerator(nn.Module):
    """Seed 003's G: independent noise at every position of a (H/4)x(W/4) latent map."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.latent_shape = (latent_dim, height // 4, width // 4)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 256, 4, 2, 1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(128, channels, 3, 1, 1),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z)


class ProjectedGenerator(nn.Module):
    """A latent vector projected to a (H/4)x(W/4) map, then two learned 2x upsamplings."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        channels, height, width = image_shape
        h, w = height // 4, width // 4
        self.latent_shape = (latent_dim,)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 128 * h * w, bias=False),
            nn.BatchNorm1d(128 * h * w),
            nn.ReLU(inplace=True),
            Reshape(128, h, w),
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(64, channels, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z)


class SmallDiscriminator(HeadedDiscriminator):
    """Two stride-2 convolutions and one logit: cheap enough for CPU training."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout2d(0.2),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout2d(0.2),
            nn.Flatten(),
            nn.Linear(128 * (height // 4) * (width // 4), 1),
        )


def build_dcgan(image_shape: tuple[int, int, int], latent_dim: int) -> tuple[nn.Module, nn.Module]:
    require_multiple("dcgan", image_shape, 4, 8)
    pair = SpatialLatentGenerator(image_shape, latent_dim), DCGANDiscriminator(image_shape)
    for module in pair:
        dcgan_init(module)
    return pair


def build_projected(
    image_shape: tuple[int, int, int], latent_dim: int
) -> tuple[nn.Module, nn.Module]:
    require_multiple("dcgan-proj", image_shape, 4, 8)
    pair = ProjectedGenerator(image_shape, latent_dim), SmallDiscriminator(image_shape)
    for module in pair:
        dcgan_init(module)
    return pair
