"""NIfTI volumes -> axial uint8 slices that contain brain, intensity-normalised per volume."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from gan.data.limits import MAX_HEADER_BYTES, check_slices, check_volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_FOREGROUND = 0.1  # of the normalised range: what counts as tissue rather than background
_MIN_FOREGROUND_FRACTION = 0.02  # slices with less tissue than this are skipped
_PEEK = 544  # a NIfTI-2 header (540 bytes) and the 4 that say whether extensions follow


def normalise_volume(data: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Clip to percentiles of the non-zero voxels and scale to [0, 1]."""
    nonzero = data[data > 0]
    if nonzero.size == 0:
        return np.zeros_like(data, dtype=np.float32)
    lo, hi = np.percentile(nonzero, [low, high])
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((data - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


@contextmanager
def _stream(path: Any) -> Iterator[BinaryIO]:
    """The volume's bytes as a stream, decompressed as it is read (never all at once), and
    closed after (an in-memory object's bytes are then no longer held by it)."""
    with path.open("rb") as raw:  # a Path, or a MemoryFile (an s3 object read with --no-cache)
        if not path.name.lower().endswith(".gz"):
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            yield stream


def _check_header(path: Any):
    """The image class of the volume, once its header has been read (with nothing else) and
    found within the limits: 3 or 4 dims, the voxels of one volume, and the bytes of the
    header and its extensions, which nibabel would otherwise read as declared."""
    import nibabel

    with _stream(path) as stream:
        block = stream.read(_PEEK)
        klass = next(
            (k for k in (nibabel.Nifti1Image, nibabel.Nifti2Image)
             if k.header_class.may_contain_header(block)),
            None,
        )  # fmt: skip
        if klass is None:
            raise ValueError("not a NIfTI-1 or NIfTI-2 header")
        size = klass.header_class.template_dtype.itemsize
        header = klass.header_class(block[:size], check=False)
        check_volume(header.get_data_shape(), header.get_data_dtype().itemsize)
        offset = float(header["vox_offset"])
        if not 0 <= offset <= MAX_HEADER_BYTES:
            raise ValueError(f"the voxels are declared to start at byte {offset:.0f}")
        if block[size : size + 1] not in (b"", b"\x00"):  # extensions follow the header
            block += stream.read(max(0, int(offset) - len(block)))
            _check_extensions(block, size + 4, int(offset), header.endianness)
    return klass


def _check_extensions(block: bytes, start: int, end: int, endian: str) -> None:
    """Each extension must fit between the header and the voxels."""
    if end <= start or len(block) < end:
        raise ValueError("the header's extensions do not end before the voxels")
    position = start
    while end - position >= 16:
        esize = int.from_bytes(block[position : position + 4], "little" if endian == "<" else "big")
        if not 16 <= esize <= end - position:
            raise ValueError(f"a header extension declares {esize} bytes")
        position += esize


def _first_volume(path: Any) -> np.ndarray:
    """The volume (the first of a 4-D series) as float32, reoriented to RAS; only its own
    voxels are read."""
    klass = _check_header(path)
    if isinstance(path, Path):
        return _read(klass.from_filename(str(path)))
    with _stream(path) as stream:  # an object read into memory (--no-cache)
        return _read(klass.from_stream(stream))


def _read(image: Any) -> np.ndarray:
    from nibabel.orientations import apply_orientation, io_orientation

    shape = image.shape
    if min(shape[:3]) < 2:
        raise ValueError(f"expected a 3-D volume, got shape {shape}")
    proxy = image.dataobj
    data = np.asarray(proxy[..., 0] if len(shape) == 4 else proxy, dtype=np.float32)
    # What nibabel.as_closest_canonical does, to the one volume read.
    return apply_orientation(data, io_orientation(image.affine))


def axial_slices(path: Any, size: tuple[int, int] | None) -> list[np.ndarray]:
    """Read a volume and return its brain-containing axial slices as 1 x H x W uint8 arrays.

    Slices are shown anterior at the top, in the neurological convention (the patient's
    left on the image's left), after reorienting the volume to RAS.
    """
    data = _first_volume(path)
    if not np.isfinite(data).all():
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    volume = normalise_volume(data)
    foreground = (volume > _FOREGROUND).mean(axis=(0, 1))
    chosen = np.flatnonzero(foreground >= _MIN_FOREGROUND_FRACTION)
    # A few bytes of gzip can declare a 2 x 2 x 30,000,000 volume: bound the slices it
    # yields (each made at `size`) before making any.
    height, width = size if size is not None else (volume.shape[1], volume.shape[0])
    check_slices(len(chosen), height * width)
    slices = []
    for k in chosen:
        plane = volume[:, :, k].T[::-1]  # rows: anterior -> posterior; columns: left -> right
        img = Image.fromarray((plane * 255.0).round().astype(np.uint8), mode="L")
        if size is not None:
            img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        slices.append(np.asarray(img, dtype=np.uint8)[None])
    return slices
