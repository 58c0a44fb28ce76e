"""Image datasets by name (names and defaults: `gan.catalog`), loaded as uint8 N x C x H x W."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from gan.catalog import DATASETS
from gan.config import DataConfig


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


def load_dataset(config: DataConfig) -> ImageData:
    """Load the dataset named in the config at the configured (or default) size."""
    spec = DATASETS.get(config.name)
    return spec.loader()(config, config.image_size or spec.default_image_size)
