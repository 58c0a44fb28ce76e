"""`folder`: any folder of images, searched recursively."""

from __future__ import annotations

from collections import Counter
from typing import Any

from loguru import logger

from gan.config import DataConfig
from gan.data import ImageData, label_images
from gan.data.decode import IMAGE_SUFFIXES, decode_all, image_info, read_image, stack
from gan.data.sources import gather
from gan.errors import GanError

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_FALLBACK_SIZE = (64, 64)


def _survey(files: list[Any]) -> tuple[int, tuple[int, int]]:
    """Channels (1 if every image is grayscale) and the most common size, from headers only."""
    infos = [info for info in map(image_info, files) if info is not None]
    if not infos:
        return 1, _FALLBACK_SIZE
    channels = 1 if all(mode in _GRAY_MODES for mode, _ in infos) else 3
    sizes = Counter(size for _, size in infos)
    size, _ = sizes.most_common(1)[0]
    if len(sizes) > 1:
        logger.info("Images have {} different sizes; resizing all to {}x{}.", len(sizes), *size)
    return channels, size


def load_folder(config: DataConfig, size: tuple[int, int] | None) -> ImageData:
    if not config.source:
        raise GanError("The folder dataset needs --data pointing at a folder of images.")
    root, files, relative, extra = gather(config, config.source, IMAGE_SUFFIXES, "image files")
    channels, common_size = _survey(files)
    size = size or common_size
    counts: list[int] = []
    arrays, skipped = decode_all(files, lambda p: [read_image(p, channels, size)], root, counts)
    if skipped:
        extra["skipped_files"] = skipped
    data = ImageData(stack(arrays, root), "folder", root, extra)
    # Labels: the subfolder each image lies in, when every image lies in one.
    if all("/" in name for name, count in zip(relative, counts, strict=True) if count):
        folders = [name.split("/", 1)[0] for name in relative]
        data.labels, data.classes = label_images(folders, counts)
    return data
