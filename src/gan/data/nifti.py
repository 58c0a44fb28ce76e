"""NIfTI volumes -> axial uint8 slices that contain brain, intensity-normalised per volume."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_FOREGROUND = 0.1  # of the normalised range: what counts as tissue rather than background
_MIN_FOREGROUND_FRACTION = 0.02  # slices with less tissue than this are skipped


def normalise_volume(data: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Clip to percentiles of the non-zero voxels and scale to [0, 1]."""
    nonzero = data[data > 0]
    if nonzero.size == 0:
        return np.zeros_like(data, dtype=np.float32)
    lo, hi = np.percentile(nonzero, [low, high])
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((data - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def axial_slices(path: Any, size: tuple[int, int] | None) -> list[np.ndarray]:
    """Read a volume and return its brain-containing axial slices as 1 x H x W uint8 arrays.

    Slices are shown anterior at the top, in the neurological convention (the patient's
    left on the image's left), after reorienting the volume to RAS.
    """
    import nibabel

    if isinstance(path, Path):
        image = nibabel.load(str(path))
    else:  # an object read into memory (--no-cache)
        data = path.read_bytes()
        image = nibabel.Nifti1Image.from_bytes(
            gzip.decompress(data) if path.name.endswith(".gz") else data
        )
    image = nibabel.as_closest_canonical(image)
    data = np.asarray(image.dataobj, dtype=np.float32)
    if data.ndim == 4:
        data = data[..., 0]
    if data.ndim != 3 or min(data.shape) < 2:
        raise ValueError(f"expected a 3-D volume, got shape {data.shape}")
    if not np.isfinite(data).all():
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    volume = normalise_volume(data)
    foreground = (volume > _FOREGROUND).mean(axis=(0, 1))
    slices = []
    for k in np.flatnonzero(foreground >= _MIN_FOREGROUND_FRACTION):
        plane = volume[:, :, k].T[::-1]  # rows: anterior -> posterior; columns: left -> right
        img = Image.fromarray((plane * 255.0).round().astype(np.uint8), mode="L")
        if size is not None:
            img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        slices.append(np.asarray(img, dtype=np.uint8)[None])
    return slices
