"""Images trained at their own size (no --image-size given) that the model cannot take:
one sentence naming the models that take that size, and a size the model takes."""

from __future__ import annotations

import math
from typing import Any

from gan.config import Config
from gan.config.catalog import MODELS
from gan.errors import GanError


def _fits(name: str, image_shape: tuple[int, ...], latent_dim: int) -> bool:
    from gan.models import check_model_fits

    try:
        check_model_fits(name, image_shape, latent_dim)
    except Exception:  # GanError, or a layer that cannot take so small an image
        return False
    return True


def _sizes(height: int, width: int) -> list[tuple[int, int]]:
    """Sizes from (H, W) up, smallest first, that the models' rules may allow (sides
    multiples of 2, 4 or 8, at least 4 to 64)."""
    found = {
        (max(math.ceil(height / step) * step, least), max(math.ceil(width / step) * step, least))
        for step in (1, 2, 4, 8)
        for least in (1, 4, 8, 16, 32, 64)
    }
    found.discard((height, width))
    return sorted(found, key=lambda s: (s[0] * s[1], s))


def check_own_size(config: Config, image_shape: tuple[int, ...], source: Any) -> None:
    """Raise one sentence when the model cannot take the images' own size: train them as
    they are with a model that takes it, or resize them to a size the model takes. Images
    are never enlarged unasked: an 8x8 image enlarged to 64x64 gains no detail, and its
    samples would be 64x64 blurs of what the user has."""
    name, latent = config.model.name, config.model.latent_dim
    if _fits(name, image_shape, latent):
        return
    channels, height, width = image_shape
    others = [m for m in MODELS.names() if m != name and _fits(m, image_shape, latent)]
    size = next((s for s in _sizes(height, width) if _fits(name, (channels, *s), latent)), None)
    listed = ", ".join(others[:-1]) + " or " + others[-1] if len(others) > 1 else "".join(others)
    ways = [f"train them at that size with --model {listed}"] if others else []
    if size is not None:
        note = " (enlarging adds no detail)" if size[0] * size[1] >= 2 * height * width else ""
        ways.append(f"resize them with --image-size {size[0]}x{size[1]}{note}")
    raise GanError(
        f"The images of {source} are {height}x{width} (their own size: no --image-size was "
        f"given), which model {name!r} cannot take; "
        + (", or ".join(ways) if ways else "give an --image-size and a --model that takes it")
        + "."
    )
