"""`mri`: brain MRI slices from image files and/or NIfTI volumes; a real sample ships inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gan.config import DataConfig
from gan.data import ImageData, register_dataset
from gan.data.decode import IMAGE_SUFFIXES, decode_all, find_files, read_image, require_path, stack
from gan.data.nifti import NIFTI_SUFFIXES, axial_slices
from gan.errors import GanError

SAMPLE_DIR = Path(__file__).parent / "mri_sample"


def _decode(path: Path, size: tuple[int, int]) -> list[np.ndarray]:
    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return axial_slices(path, size)
    return [read_image(path, 1, size)]


@register_dataset(
    "mri",
    default_model="mri",
    default_epochs=50,
    default_image_size=(200, 160),
    summary="brain MRI slices (PNG/JPG/TIFF) and/or NIfTI volumes; default: a bundled sample",
)
def load_mri(config: DataConfig, size: tuple[int, int] | None) -> ImageData:
    root = require_path(Path(config.source)) if config.source else SAMPLE_DIR
    files = find_files(root, IMAGE_SUFFIXES + NIFTI_SUFFIXES)
    if not files:
        raise GanError(
            f"No MRI slices or volumes (PNG/JPG/TIFF, .nii, .nii.gz) were found in {root}; "
            "check the path."
        )
    size = size or (200, 160)
    arrays, skipped = decode_all(files, lambda p: _decode(p, size), root)
    source = str(root) if config.source else "bundled sample (MNI ICBM152 2009a, see NOTICE)"
    extra = {"files": len(files) - skipped}
    if skipped:
        extra["skipped_files"] = skipped
    return ImageData(stack(arrays, root), "mri", source, extra)
