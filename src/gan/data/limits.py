"""The bounds every decoder checks a file's declared sizes against before allocating.

A header is a promise the file may not keep: a few hundred bytes can declare a terabyte of
pixels, and a gzip stream of a few megabytes can inflate to gigabytes. So each loader reads
the header first, compares what it declares with the limits below (and with a share of the
machine's memory), and only then allocates; compressed payloads are inflated with a cap of
what the header declared. An exceeded limit is a per-file failure (skipped and counted in
the loader's one warning) or, where the file is the whole dataset (an MNIST IDX file), a
`GanError` sentence.

The limits are generous for real data: the full MNIST train split is 47 MB, a 1 mm T1 brain
volume 193x229x193 = 8.5 M voxels, a NASA BPS crop a few hundred pixels a side, a 50 MP
photo 50 M pixels.

Decoding is CPU-bound, so it runs on at most `usable_cores()` threads at once.
"""

from __future__ import annotations

import math
import os

MAX_IDX_BYTES = 1 << 30  # pixel bytes of one IDX image file (MNIST train: 47 MB, EMNIST: 0.5 GB)
MAX_IMAGE_PIXELS = 89_478_485  # width x height of one image, page or frame: PIL's own default
MAX_IMAGE_BYTES = MAX_IMAGE_PIXELS * 8  # one decoded TIFF page: 4 samples of 16 bits per pixel
MAX_VOLUME_VOXELS = 1 << 27  # the 3 spatial dims of one NIfTI volume: 512^3, 16x a 1 mm T1
MAX_HEADER_BYTES = 16 << 20  # a NIfTI header and its extensions, before the voxels
MAX_OBJECT_BYTES = 2 << 30  # one s3 object held in memory with --no-cache
MAX_TABLE_BYTES = 256 << 20  # a BPS meta.csv: one short line per image

# Cache paths: one component of a path (NAME_MAX on Linux and macOS) and a whole path
# (Linux's PATH_MAX), less room for the temporary name a file is first written under
# (`gan.atomic.temp_name`). Keys past them are skipped before anything is downloaded.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
TEMP_NAME_BYTES = 48

_MEMORY_SHARE = 4  # one file may take at most a quarter of physical memory


def memory_budget() -> int | None:
    """Bytes one file's decoding may take: a share of physical memory (None if unknown)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return total // _MEMORY_SHARE if total > 0 else None


def bounded(limit: int, bytes_per_unit: int = 1) -> int:
    """`limit` units, or fewer when that many would not fit in the memory budget."""
    budget = memory_budget()
    return limit if budget is None else min(limit, budget // max(1, bytes_per_unit))


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask; cpu_count where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_pixels(width: int, height: int, what: str = "image") -> None:
    """Raise ValueError when an image's declared size is empty or over the pixel limit."""
    limit = bounded(MAX_IMAGE_PIXELS, 4)
    if width < 1 or height < 1 or width * height > limit:
        raise ValueError(f"{what} declares {width}x{height} pixels; the limit is {limit:,} pixels")


def check_volume(shape: tuple[int, ...], itemsize: int) -> None:
    """Raise ValueError unless `shape` is a 3-D volume (or a 4-D series of them, of which
    only the first is read) within the voxel limit."""
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise ValueError(f"expected a 3-D volume, got shape {tuple(shape)}")
    voxels = math.prod(int(d) for d in shape[:3])
    limit = bounded(MAX_VOLUME_VOXELS, 8 * max(4, itemsize))  # float copies while normalising
    if voxels > limit:
        dims = "x".join(str(d) for d in shape[:3])
        raise ValueError(f"volume declares {dims} = {voxels:,} voxels; the limit is {limit:,}")
