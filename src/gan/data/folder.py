"""`folder`: any folder of images (DICOM files among them), searched recursively."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from gan.config import DataConfig
from gan.config.values import MAX_SIDE
from gan.data import ImageData, label_images
from gan.data.archive_set import member_labels
from gan.data.decode import (
    IMAGE_SUFFIXES,
    decode_all,
    find_files,
    image_info,
    image_or,
    read_image,
    stack,
)
from gan.data.dicom import DICOM_SUFFIXES, DicomReader, dicom_info, is_dicom
from gan.data.limits import dataset_problem
from gan.data.modes import Conversions
from gan.data.nifti import NIFTI_SUFFIXES
from gan.data.s3 import is_s3
from gan.data.sources import gather
from gan.errors import GanError

_FALLBACK_SIZE = (64, 64)


def _info(path: Any) -> tuple[bool, tuple[int, int]] | None:
    """`image_info`, else `dicom_info` (DICOM by suffix or its bytes, or named .tif)."""
    info = image_info(path) if path.name.lower().endswith(IMAGE_SUFFIXES) else None
    return info or dicom_info(path)


def _survey(files: list[Any]) -> tuple[int, tuple[int, int]]:
    """Channels (1 if every image is grayscale) and the most common size once upright (EXIF
    orientation applied), from headers only."""
    infos = [info for info in map(_info, files) if info is not None]
    if not infos:
        return 1, _FALLBACK_SIZE
    channels = 1 if all(gray for gray, _ in infos) else 3
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


def _volumes_instead(source: str) -> None:
    """When a folder without images holds NIfTI volumes, say which dataset reads them."""
    path = Path(source).expanduser()
    if is_s3(source) or not path.exists():
        return
    volumes = find_files(path, NIFTI_SUFFIXES)
    if volumes:
        raise GanError(
            f"{path} holds no image files but {len(volumes)} NIfTI volume(s); train on "
            "their slices with --dataset mri."
        )


def load_folder(config: DataConfig, size: tuple[int, int] | None) -> ImageData:
    if not config.source:
        raise GanError("The folder dataset needs --data pointing at a folder of images.")
    suffixes = IMAGE_SUFFIXES + DICOM_SUFFIXES
    try:
        root, files, relative, extra = gather(
            config, config.source, suffixes, "image files", is_dicom
        )
    except GanError:
        _volumes_instead(config.source)
        raise
    channels, common_size = _survey(files)
    _check_total(len(files), channels, size or common_size, root, own=size is None)
    size = size or common_size
    dicom = DicomReader(size, config.dicom_window)
    counts: list[int] = []
    notes = Conversions()  # what was converted, said in one line once decoded

    def image(path: Any) -> np.ndarray:
        return read_image(path, channels, size, notes)

    def slices(path: Any) -> list[np.ndarray]:  # DICOM's are gray
        return [np.repeat(s, channels, axis=0) for s in dicom(path)]

    arrays, skipped = decode_all(
        files, lambda p: image_or(p, image, slices, is_dicom), root, counts
    )
    notes.report(channels)
    if skipped:
        extra["skipped_files"] = skipped
    data = ImageData(stack(arrays, root), "folder", root, dicom.finish(extra))
    if extra.get("archives"):  # labels: the archives' own (dataset.json, .cls members)
        labelled = member_labels(files, counts, root)
        if labelled is not None:
            data.labels, data.classes = labelled
    # Labels: the subfolder each image lies in, when every image lies in one.
    elif all("/" in name for name, count in zip(relative, counts, strict=True) if count):
        folders = [name.split("/", 1)[0] for name in relative]
        data.labels, data.classes = label_images(folders, counts)
    return data
