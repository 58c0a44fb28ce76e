"""`fastgan`: the small-data pair for brain MRI slices, microscopy and 64x64 images, after
FastGAN (Liu et al. 2021) with the parts that pay on a CPU budget.

G projects the latent to a 64 x (H/8) x (W/8) map, then two nearest-upsample + 3x3 conv
+ BatchNorm + ReLU blocks to 16 channels at half resolution. A skip-layer excitation
(FastGAN's SLE) gates those half-resolution channels with weights computed from the
(H/8) x (W/8) map: the global layout steers the fine texture directly, one cheap
multiplication instead of a deeper G. The last block upsamples to full resolution and
makes the image with one 3x3 conv (16 -> channels) and Tanh: no feature map is ever held
at full resolution, which is where the seed `mri` G spends most of its time.

D has no batch statistics: a 4x4 stride-2 conv stem, then three residual blocks (3x3
stride-2 conv + 3x3 conv, a 2x2 average pool + 1x1 conv skip, summed and scaled by
1/sqrt(2)), each halving the resolution, then one logit from the flattened last map (it
keeps where things are, which matters for slices of one anatomy). Spectral norm, where
wanted, comes from outside (`--spectral-norm`).

Every layer of G is a direct child of `G.net` taking one tensor (the excitation reads the
map it needs from a `Stash` earlier in the same net), so the class-conditional wrapper can
replace its BatchNorms like any other G's.
"""

from __future__ import annotations

from torch import nn

from gan.models import require_multiple
from gan.models.blocks import HeadedDiscriminator, conv_out, dcgan_init, projection, up_block
from gan.models.resgan import residual_downs

# Widths chosen by measurement (docs/training.md): half the channels of (128, 64, 32) in G
# and (32; 64, 128, 256) in D make a step 2.8x cheaper (0.095 against 0.26 s: batch 16,
# 1x200x160, 2 cores of an AMD Zen 5, bf16, no augmentation) and, in the same time, a FID
# as good or better.
_G_WIDTHS = (64, 32, 16)  # channels at 1/8, 1/4 and 1/2 of the image's size
_D_STEM = 16  # channels after the stem, at 1/2
_D_WIDTHS = (32, 64, 128)  # after each residual halving: 1/4, 1/8, 1/16 (rounded up)


class Stash(nn.Module):
    """The identity, keeping its input in `slot` for an `Excite` later in the same net."""

    def __init__(self, slot: dict) -> None:
        super().__init__()
        self.slot = slot

    def forward(self, x):
        self.slot["x"] = x
        return x


class Excite(nn.Module):
    """FastGAN's skip-layer excitation: x * sigmoid(f(pooled stashed map)), per channel."""

    def __init__(self, slot: dict, c_small: int, c_big: int) -> None:
        super().__init__()
        self.slot = slot
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),
            nn.Conv2d(c_small, c_big, 4),
            nn.LeakyReLU(0.1),
            nn.Conv2d(c_big, c_big, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        small = self.slot.pop("x")  # popped: the net keeps no activation after a pass
        return x * self.gate(small)


class FastGANGenerator(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.latent_shape = (latent_dim,)
        c0 = _G_WIDTHS[0]
        slot: dict = {}
        layers = [*projection(latent_dim, c0, height // 8, width // 8), Stash(slot)]
        for c_in, c_out in zip(_G_WIDTHS, _G_WIDTHS[1:], strict=False):
            layers += up_block(c_in, c_out)
        layers += [
            Excite(slot, c0, _G_WIDTHS[-1]),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(_G_WIDTHS[-1], channels, 3, padding=1),
            nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)
        # For --grow: the layers after which the maps at 1/8, 1/4 and 1/2 are done.
        self.growth = ([4, 8, 13], list(_G_WIDTHS))

    def forward(self, z):
        return self.net(z)


class FastGANDiscriminator(HeadedDiscriminator):
    batch_independent = True  # no batch statistics: R1, WGAN-GP and joint passes allowed

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, h, w = image_shape
        stem = [nn.Conv2d(channels, _D_STEM, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        half = (_D_STEM, conv_out(h, 4, 2, 1), conv_out(w, 4, 2, 1))
        body, (c, h, w) = residual_downs(half, _D_WIDTHS)
        self.net = nn.Sequential(*stem, *body, nn.Flatten(), nn.Linear(c * h * w, 1))
        # For --grow: the residual blocks that take the maps at 1/8, 1/4 and 1/2.
        self.growth = ([4, 3, 2], [_D_WIDTHS[1], _D_WIDTHS[0], _D_STEM])


def build(image_shape: tuple[int, int, int], latent_dim: int) -> tuple[nn.Module, nn.Module]:
    require_multiple("fastgan", image_shape, 8, 32)
    pair = (FastGANGenerator(image_shape, latent_dim), FastGANDiscriminator(image_shape))
    for module in pair:
        dcgan_init(module)
    return pair
