"""`mri`: brain MRI slices from image files and/or NIfTI volumes; a real sample ships inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gan.config import DataConfig
from gan.data import ImageData
from gan.data.decode import IMAGE_SUFFIXES, decode_all, read_image, stack
from gan.data.nifti import NIFTI_SUFFIXES, axial_slices
from gan.data.sources import gather

SAMPLE_DIR = Path(__file__).parent / "mri_sample"


def _decode(path: Any, size: tuple[int, int]) -> list[np.ndarray]:
    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return axial_slices(path, size)
    return [read_image(path, 1, size)]


def load_mri(config: DataConfig, size: tuple[int, int] | None) -> ImageData:
    source = config.source or str(SAMPLE_DIR)
    root, files, _, extra = gather(
        config, source, IMAGE_SUFFIXES + NIFTI_SUFFIXES, "MRI slices or volumes"
    )
    size = size or (200, 160)
    arrays, skipped = decode_all(files, lambda p: _decode(p, size), root)
    if not config.source:
        root = "bundled sample (MNI ICBM152 2009a, see NOTICE)"
    extra["files"] = len(files) - skipped
    if skipped:
        extra["skipped_files"] = skipped
    return ImageData(stack(arrays, root), "mri", root, extra)
