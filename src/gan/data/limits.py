"""The bounds every decoder checks a file's declared sizes against before allocating.

A header is a promise the file may not keep: a few hundred bytes can declare a terabyte of
pixels, and a gzip stream of a few megabytes can inflate to gigabytes. So each loader reads
the header first, compares what it declares with the limits below (and with a share of the
machine's memory), and only then allocates; compressed payloads are inflated with a cap of
what the header declared. An exceeded limit is a per-file failure (skipped and counted in
the loader's one warning) or, where the file is the whole dataset (an MNIST IDX file), a
`GanError` sentence.

Totals are bounded too: the slices one volume yields (`MAX_VOLUME_SLICES`), and the decoded
bytes of a whole dataset, which may take at most a quarter of the machine's memory (the
stacking copies them once more, and training needs the rest): checked before a folder is
decoded, as files are decoded, and before the images are stacked.

The limits are generous for real data: the full MNIST train split is 47 MB, a 1 mm T1 brain
volume 193x229x193 = 8.5 M voxels (229 axial slices), a NASA BPS crop a few hundred pixels
a side, a 50 MP photo 50 M pixels.

Decoding is CPU-bound, so it runs on at most `usable_cores()` threads at once.
"""

from __future__ import annotations

import math
import os

MAX_IDX_BYTES = 1 << 30  # pixel bytes of one IDX image file (MNIST train: 47 MB, EMNIST: 0.5 GB)
MAX_IMAGE_PIXELS = 89_478_485  # width x height of one image, page or frame: PIL's own default
MAX_IMAGE_BYTES = MAX_IMAGE_PIXELS * 8  # one decoded TIFF page: 4 samples of 16 bits per pixel
MAX_VOLUME_VOXELS = 1 << 27  # the 3 spatial dims of one NIfTI volume: 512^3, 16x a 1 mm T1
MAX_VOLUME_SLICES = 4096  # axial slices one volume may yield: 8x a 512^3 volume's
MAX_HEADER_BYTES = 16 << 20  # a NIfTI header and its extensions, before the voxels
MAX_OBJECT_BYTES = 2 << 30  # one s3 object held in memory with --no-cache
MAX_TABLE_BYTES = 256 << 20  # a BPS meta.csv: one short line per image

# Cache paths: one component of a path (NAME_MAX on Linux and macOS) and a whole path
# (Linux's PATH_MAX), less room for the temporary name a file is first written under
# (`gan.atomic.temp_name`). Keys past them are skipped before anything is downloaded.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
TEMP_NAME_BYTES = 48

_MEMORY_SHARE = 4  # one file, or a whole decoded dataset, at most a quarter of the memory
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def physical_memory() -> int | None:
    """Bytes of memory this process may use: the machine's, or its container's limit where
    that is lower (a container's processes are killed at its limit, not the machine's)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    for name in _CGROUP_LIMITS:
        try:
            with open(name, "rb") as f:
                text = f.read(64).strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:  # "max", or a huge "unlimited"
            total = int(text)
    return total if total > 0 else None


def memory_budget() -> int | None:
    """Bytes one file's decoding, or a whole dataset's decoded images, may take: a share of
    the memory (None if unknown)."""
    total = physical_memory()
    return None if total is None else total // _MEMORY_SHARE


def size_text(nbytes: float) -> str:
    """Bytes for a sentence: '1.5 GB', '310 MB'."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.3g} {unit}"
    return f"{max(nbytes, 0) / 1e3:,.3g} KB"


def dataset_problem(images: int, total_bytes: int) -> str | None:
    """Why `images` decoded images of `total_bytes` together cannot be held, or None: they
    may take at most a quarter of the memory (stacking them takes as much again)."""
    budget = memory_budget()
    if budget is None or total_bytes <= budget:
        return None
    return (
        f"{images:,} images take {size_text(total_bytes)} decoded, more than the "
        f"{size_text(budget)} a dataset may take on this machine, a quarter of its "
        f"{size_text(budget * _MEMORY_SHARE)}"
    )


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


def check_slices(count: int, slice_bytes: int) -> None:
    """Raise ValueError when one volume would yield more slices than a volume may, or
    slices that together pass one file's share of the memory."""
    limit = bounded(MAX_VOLUME_SLICES, max(1, slice_bytes))
    if count > limit:
        raise ValueError(f"the volume yields {count:,} slices; the limit is {limit:,}")
