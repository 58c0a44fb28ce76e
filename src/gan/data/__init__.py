"""Image datasets, registered by name. Each loads into one uint8 tensor N x C x H x W."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from gan.config import DataConfig
from gan.registry import Registry


@dataclass
class ImageData:
    """Decoded images (uint8, N x C x H x W, on the CPU) and where they came from."""

    images: torch.Tensor
    name: str
    source: str
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The `dataset` block of run.json and of every checkpoint."""
        return {
            "name": self.name,
            "source": self.source,
            "num_images": int(self.images.shape[0]),
            "image_shape": [int(s) for s in self.images.shape[1:]],
            **self.extra,
        }


Loader = Callable[[DataConfig, tuple[int, int] | None], ImageData]


@dataclass(frozen=True)
class DatasetSpec:
    load: Loader  # load(config, image_size or None for the dataset's own size)
    default_model: str
    default_image_size: tuple[int, int] | None  # None: the images' own size
    default_epochs: int
    channels: int | None  # None: decided by the data
    summary: str


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(
    name: str,
    *,
    default_model: str,
    default_epochs: int,
    summary: str,
    default_image_size: tuple[int, int] | None = None,
    channels: int | None = 1,
) -> Callable[[Loader], Loader]:
    def decorator(load: Loader) -> Loader:
        spec = DatasetSpec(
            load, default_model, default_image_size, default_epochs, channels, summary
        )
        DATASETS.register(name)(spec)
        return load

    return decorator


def load_dataset(config: DataConfig) -> ImageData:
    """Load the dataset named in the config at the configured (or default) size."""
    spec = DATASETS.get(config.name)
    return spec.load(config, config.image_size or spec.default_image_size)


from gan.data import bps, folder, mnist, mri  # noqa: E402,F401  (registration)
