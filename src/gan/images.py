"""Image grids and files: [-1, 1] tensors -> [0, 1] -> PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

# torchvision is imported where it is used: importing it loads torch._dynamo (about 4 s),
# which commands that stop early (errors, --help) and `gan bench`'s workers do not need.


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Map generator output in [-1, 1] to [0, 1] (float32, on the CPU)."""
    return images.detach().float().cpu().add(1.0).div_(2.0).clamp_(0.0, 1.0)


def default_nrow(count: int) -> int:
    return max(1, math.ceil(math.sqrt(count)))


def grid(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """A C x H x W grid in [0, 1] of images given in [-1, 1]."""
    from torchvision.utils import make_grid

    unit = to_unit(images)
    return make_grid(unit, nrow=nrow or default_nrow(len(unit)), padding=2, pad_value=0.5)


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> Path:
    """Write images given in [-1, 1] as one PNG grid (`save_picture`)."""
    return save_picture(grid(images, nrow), path)


def save_picture(picture: torch.Tensor, path: Path) -> Path:
    """Write a C x H x W picture in [0, 1] as a PNG, whole (a link at `path` is replaced,
    not written through)."""
    from torchvision.utils import save_image

    from gan.atomic import atomic_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, durable=False) as f:
        save_image(picture, f, format="PNG")
    return path


def grid_count(image_shape: tuple[int, int, int]) -> int:
    """How many images a training grid shows: 64 small ones, 16 large ones."""
    _, height, width = image_shape
    return 64 if height * width <= 64 * 64 else 16


def save_gif(frames: list[torch.Tensor], path: Any, ms_per_frame: int = 120) -> Any:
    """An animated GIF of C x H x W frames in [0, 1], looping forever, into `path`: an
    open binary file (the caller's temporary file) or a path."""
    from PIL import Image

    pictures = []
    for frame in frames:
        array = frame.mul(255).round().byte().permute(1, 2, 0).numpy()
        pictures.append(Image.fromarray(array[..., 0] if array.shape[2] == 1 else array))
    pictures[0].save(
        path, format="GIF", save_all=True, append_images=pictures[1:], duration=ms_per_frame, loop=0
    )
    return path
