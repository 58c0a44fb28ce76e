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
from gan.data.modes import Conversions

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_FOREGROUND = 0.1  # of the normalised range: what counts as tissue rather than background
_MIN_FOREGROUND_FRACTION = 0.02  # slices with less tissue than this are skipped
_STRETCH = 0.1  # how far a slice's proportions may be stretched to fill the image size
_LUMA = (0.299, 0.587, 0.114)
_PEEK = 544  # a NIfTI-2 header (540 bytes) and the 4 that say whether extensions follow


def normalise_volume(data: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Clip to percentiles of the non-zero voxels and scale to [0, 1]. A volume with
    negative values (CT in Hounsfield units, a signed scan) is first shifted so that its
    lowest value is 0; one whose voxels take a single non-zero value (a mask) gives 1
    where they are; one of a single value everywhere, 0."""
    if data.size == 0 or data.min() == data.max():  # one value everywhere: no image
        return np.zeros_like(data, dtype=np.float32)
    if data.min() < 0:
        data = data - data.min()
    nonzero = data[data > 0]
    if nonzero.size == 0:
        return np.zeros_like(data, dtype=np.float32)
    lo, hi = np.percentile(nonzero, [low, high])
    if hi <= lo:
        lo = 0.0
    return np.clip((data - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _gzipped(raw: BinaryIO) -> bool:
    """Whether a stream's bytes are gzip's, whatever its name says (a .nii.gz a browser
    already inflated while downloading it, a gzipped file named .nii)."""
    magic = raw.read(2)
    raw.seek(0)
    return magic == b"\x1f\x8b"


@contextmanager
def _stream(path: Any) -> Iterator[BinaryIO]:
    """The volume's bytes as a stream, decompressed as it is read (never all at once), and
    closed after (an in-memory object's bytes are then no longer held by it)."""
    with path.open("rb") as raw:  # a Path, or a MemoryFile (an s3 object read with --no-cache)
        if not _gzipped(raw):
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
        check_volume(_volume_shape(header), header.get_data_dtype().itemsize)
        offset = float(header["vox_offset"])
        if not 0 <= offset <= MAX_HEADER_BYTES:
            raise ValueError(f"the voxels are declared to start at byte {offset:.0f}")
        if block[size : size + 1] not in (b"", b"\x00"):  # extensions follow the header
            block += stream.read(max(0, int(offset) - len(block)))
            _check_extensions(block, size + 4, int(offset), header.endianness)
    return klass


def _volume_shape(header: Any) -> tuple[int, ...]:
    """The header's shape as a 3-D volume (a 2-D image is one slice) or a 4-D series;
    any other (a CIFTI-2 matrix, a 5-D vector field) is refused in one sentence."""
    shape = tuple(int(d) for d in header.get_data_shape())
    if len(shape) == 2:
        return (*shape, 1)
    if len(shape) in (3, 4):
        return shape
    cifti = 3000 <= int(header["intent_code"]) < 3100  # NIFTI_INTENT_CONNECTIVITY_*
    what = "a CIFTI-2 matrix" if cifti else f"{len(shape)}-D data"
    raise ValueError(
        f"it holds {what} of shape {'x'.join(map(str, shape))}, not an image volume; gan "
        "reads 2-D and 3-D NIfTI images and the first volume of a 4-D series"
    )


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


def _first_volume(path: Any, notes: Conversions | None) -> tuple[np.ndarray, np.ndarray]:
    """The volume (the first of a 4-D series) as float32, reoriented to RAS, and its voxel
    sizes along those axes; only its own voxels are read."""
    klass = _check_header(path)
    if isinstance(path, Path):
        with path.open("rb") as raw:
            named = _gzipped(raw) == path.name.lower().endswith(".gz")
        if named:  # nibabel opens by the name's suffix
            return _read(klass.from_filename(str(path)), notes)
    with _stream(path) as stream:  # in memory (--no-cache), an archive member, misnamed
        return _read(klass.from_stream(stream), notes)


def _read(image: Any, notes: Conversions | None) -> tuple[np.ndarray, np.ndarray]:
    from nibabel.orientations import apply_orientation, io_orientation

    shape = image.shape
    proxy = image.dataobj
    if len(shape) == 4 and notes is not None and shape[3] > 1:
        notes.note("{} 4-D series: first volume used")
    raw = np.asarray(proxy[..., 0] if len(shape) == 4 else proxy)
    if raw.ndim == 2:
        raw = raw[..., None]
    if raw.dtype.names:  # RGB24 or RGBA32 voxels: their luma (ITU-R 601-2, as PIL's)
        raw = sum(w * raw[c].astype(np.float32) for w, c in zip(_LUMA, "RGB", strict=True))
    data = np.abs(raw) if np.iscomplexobj(raw) else raw
    # What nibabel.as_closest_canonical does, to the one volume read.
    ornt = io_orientation(image.affine)
    data = apply_orientation(data.astype(np.float32, copy=False), ornt)
    spacing = np.zeros(3)
    spacing[ornt[:, 0].astype(int)] = np.sqrt((image.affine[:3, :3] ** 2).sum(axis=0))
    if min(data.shape[:2]) < 2:
        raise ValueError(
            f"it holds a single sagittal or coronal slice (shape {shape}), not axial ones"
        )
    return data, np.where(spacing > 0, spacing, 1.0)


def _fit(plane: np.ndarray, spacing: np.ndarray, size: tuple[int, int] | None):
    """The slice (rows anterior -> posterior) as an image of `size` that keeps its
    proportions in millimetres: resized into the middle of a black image when the
    proportions differ from the size's by more than `_STRETCH`, else resized to fill it."""
    img = Image.fromarray((plane * 255.0).round().astype(np.uint8), mode="L")
    if size is None:
        return img, False
    height, width = size
    tall = plane.shape[0] * spacing[1] / (plane.shape[1] * spacing[0])  # mm high per mm wide
    if max(tall / (height / width), (height / width) / tall) <= 1 + _STRETCH:
        return img.resize((width, height), Image.Resampling.BILINEAR), False
    inner = (width, max(1, round(width * tall))) if tall < height / width else None
    inner = inner or (max(1, round(height / tall)), height)
    canvas = Image.new("L", (width, height))
    corner = ((width - inner[0]) // 2, (height - inner[1]) // 2)
    canvas.paste(img.resize(inner, Image.Resampling.BILINEAR), corner)
    return canvas, True


def axial_slices(
    path: Any, size: tuple[int, int] | None, notes: Conversions | None = None
) -> list[np.ndarray]:
    """Read a volume and return its brain-containing axial slices as 1 x H x W uint8 arrays.

    Slices are shown anterior at the top, in the neurological convention (the patient's
    left on the image's left), after reorienting the volume to RAS; each keeps its
    proportions in millimetres (`_fit`). A volume without such a slice is a ValueError.
    """
    data, spacing = _first_volume(path, notes)
    if not np.isfinite(data).all():
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    volume = normalise_volume(data)
    foreground = (volume > _FOREGROUND).mean(axis=(0, 1))
    chosen = np.flatnonzero(foreground >= _MIN_FOREGROUND_FRACTION)
    # A few bytes of gzip can declare a 2 x 2 x 30,000,000 volume: bound the slices it
    # yields (each made at `size`) before making any.
    height, width = size if size is not None else (volume.shape[1], volume.shape[0])
    check_slices(len(chosen), height * width)
    if not len(chosen):
        raise ValueError(
            "no axial slice holds tissue (2% of its voxels above a tenth of the volume's "
            "range): the volume is blank or holds no image"
        )
    slices, padded = [], False
    for k in chosen:
        plane = volume[:, :, k].T[::-1]  # rows: anterior -> posterior; columns: left -> right
        img, padded = _fit(plane, spacing, size)
        slices.append(np.asarray(img, dtype=np.uint8)[None])
    if padded and notes is not None:
        notes.note("{} volume(s) kept to their proportions in mm, with black borders")
    return slices
