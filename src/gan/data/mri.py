"""`mri`: brain MRI slices from image files, NIfTI volumes and/or DICOM files; a real sample
ships inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gan.config import DataConfig
from gan.data import ImageData
from gan.data.decode import (
    IMAGE_SUFFIXES,
    decode_all,
    image_or,
    read_image,
    report_failures,
    stack,
)
from gan.data.dicom import DICOM_SUFFIXES, DicomReader, is_dicom
from gan.data.modes import Conversions
from gan.data.nifti import NIFTI_SUFFIXES, axial_slices
from gan.data.s3 import is_s3
from gan.data.s3_cache import NO_SUFFIX
from gan.data.sources import gather, s3_settings
from gan.data.stream import Decoder, fetch_decoded

SAMPLE_DIR = Path(__file__).parent / "mri_sample"
SUFFIXES = IMAGE_SUFFIXES + NIFTI_SUFFIXES + DICOM_SUFFIXES


def _decode(
    path: Any, size: tuple[int, int], dicom: DicomReader, notes: Conversions
) -> list[np.ndarray]:
    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return axial_slices(path, size, notes)
    # an image, else DICOM: .dcm, a file without a suffix, or one named as an image
    return image_or(path, lambda p: read_image(p, 1, size, notes), dicom, is_dicom)


def load_mri(config: DataConfig, size: tuple[int, int] | None) -> ImageData:
    source = config.source or str(SAMPLE_DIR)
    size = size or (200, 160)
    dicom = DicomReader(size, config.dicom_window)
    notes = Conversions()  # what was converted, said in one line once loaded
    if is_s3(source):  # decoded in the download workers, as the objects arrive
        settings = f"mri:{size}:dicom-{config.dicom_window}"
        decoder = Decoder(lambda p: _decode(p, size, dicom, notes), settings)
        decoded = fetch_decoded(source, SUFFIXES + (NO_SUFFIX,), s3_settings(config), decoder)
        arrays, root, extra = decoded.arrays, source, dict(decoded.summary)
        skipped = report_failures(decoded.failures, source)
        notes.report(1)
        extra["files"] = len(decoded.counts) - skipped
        if skipped:
            extra["skipped_files"] = skipped
        return ImageData(stack(arrays, root), "mri", root, dicom.finish(extra))
    root, files, _, extra = gather(config, source, SUFFIXES, "MRI slices or volumes", is_dicom)
    arrays, skipped = decode_all(files, lambda p: _decode(p, size, dicom, notes), root)
    notes.report(1)
    if not config.source:
        root = "bundled sample (MNI ICBM152 2009a, see NOTICE)"
    extra["files"] = len(files) - skipped
    if skipped:
        extra["skipped_files"] = skipped
    return ImageData(stack(arrays, root), "mri", root, dicom.finish(extra))
