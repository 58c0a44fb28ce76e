"""Image datasets by name (names and defaults: `gan.catalog`), loaded as uint8 N x C x H x W."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from gan.config import DataConfig
from gan.config.catalog import DATASETS, classes_without_labels
from gan.errors import GanError


@dataclass
class ImageData:
    """Decoded images (uint8, N x C x H x W, on the CPU) and where they came from."""

    images: torch.Tensor
    name: str
    source: str
    extra: dict[str, Any] = field(default_factory=dict)
    labels: torch.Tensor | None = None  # int64, one class index per image
    classes: tuple[str, ...] = ()  # the class names, by index

    def summary(self) -> dict[str, Any]:
        """The `dataset` block of run.json and of every checkpoint."""
        labelled = {"classes": self.class_counts()} if self.labels is not None else {}
        return {
            "name": self.name,
            "source": self.source,
            "num_images": int(self.images.shape[0]),
            "image_shape": [int(s) for s in self.images.shape[1:]],
            **labelled,
            **self.extra,
        }

    def class_counts(self) -> dict[str, int]:
        """Images per class, by class name."""
        if self.labels is None:
            return {}
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts, strict=True))


def label_images(
    names: Sequence[str], counts: Sequence[int], key: Callable[[str], Any] | None = None
):
    """(int64 labels, class names sorted by `key`) from one class name per file and the
    number of images each file gave (`decode_all`'s counts: 0 for a skipped file)."""
    per_image = [name for name, count in zip(names, counts, strict=True) for _ in range(count)]
    classes = tuple(sorted(set(per_image), key=key))
    index = {name: i for i, name in enumerate(classes)}
    return torch.tensor([index[n] for n in per_image], dtype=torch.int64), classes


def load_dataset(config: DataConfig) -> ImageData:
    """Load the dataset named in the config at the configured (or default) size."""
    spec = DATASETS.get(config.name)
    if config.classes and spec.labels is None:  # else a loader might take subfolders
        raise GanError(classes_without_labels(config.name))
    return spec.loader()(config, config.image_size or spec.default_image_size)
