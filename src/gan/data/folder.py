"""`folder`: any folder of images, searched recursively."""

from __future__ import annotations

from collections import Counter
from typing import Any

from loguru import logger

from gan.config import DataConfig
from gan.config.values import MAX_SIDE
from gan.data import ImageData, label_images
from gan.data.archive_set import member_labels
from gan.data.decode import IMAGE_SUFFIXES, decode_all, image_info, read_image, stack
from gan.data.limits import dataset_problem
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


def _check_total(files: int, channels: int, size: tuple[int, int], root: Any, own: bool) -> None:
    """Before anything is decoded: the images, at the size they will have, are within the
    side a run may have and fit in memory."""
    if own and max(size) > MAX_SIDE:
        raise GanError(
            f"The images under {root} are {size[0]}x{size[1]}, more than the {MAX_SIDE} pixels "
            "a side a run may have; give a smaller --image-size."
        )
    problem = dataset_problem(files, files * channels * size[0] * size[1])
    if problem is not None:
        which = "their own size" if own else "--image-size"
        raise GanError(
            f"The images under {root} at {size[0]}x{size[1]} ({which}) would not fit in "
            f"memory ({problem}); give a smaller --image-size, or use fewer images."
        )


def load_folder(config: DataConfig, size: tuple[int, int] | None) -> ImageData:
    if not config.source:
        raise GanError("The folder dataset needs --data pointing at a folder of images.")
    root, files, relative, extra = gather(config, config.source, IMAGE_SUFFIXES, "image files")
    channels, common_size = _survey(files)
    _check_total(len(files), channels, size or common_size, root, own=size is None)
    size = size or common_size
    counts: list[int] = []
    arrays, skipped = decode_all(files, lambda p: [read_image(p, channels, size)], root, counts)
    if skipped:
        extra["skipped_files"] = skipped
    data = ImageData(stack(arrays, root), "folder", root, extra)
    if extra.get("archives"):  # labels: the archives' own (dataset.json, .cls members)
        labelled = member_labels(files, counts, root)
        if labelled is not None:
            data.labels, data.classes = labelled
    # Labels: the subfolder each image lies in, when every image lies in one.
    elif all("/" in name for name, count in zip(relative, counts, strict=True) if count):
        folders = [name.split("/", 1)[0] for name in relative]
        data.labels, data.classes = label_images(folders, counts)
    return data
