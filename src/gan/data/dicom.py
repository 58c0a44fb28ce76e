"""DICOM objects -> grayscale uint8 slices, one per frame, with pydicom.

Each file's header is read first, its large values left unread (`defer_size`), and what it
declares (rows, columns, frames, samples, bits) is checked against `gan.data.limits` before
any pixel data is read or decoded; a deflated dataset is inflated once, capped, to learn
its size before pydicom inflates it. Frames are then decoded one at a time, passed through
the modality rescale (slope and intercept), and mapped to 0-255: by default each slice's
0.5-99.5th percentiles, or (`--dicom-window file`) the file's own window. Objects that
hold no image (RT plans, structured reports, DICOMDIR) fail like unreadable files: the
loaders skip them and count them in their one warning.
"""

from __future__ import annotations

import importlib.util
import threading
import warnings
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np
from loguru import logger
from PIL import Image

from gan.data.limits import (
    MAX_IMAGE_BYTES,
    MAX_OBJECT_BYTES,
    bounded,
    check_pixels,
    check_slices,
)

DICOM_SUFFIXES = (".dcm", ".dicom")
WINDOWS = ("percentile", "file")
PERCENTILES = (0.5, 99.5)
_MAGIC_AT, _MAGIC = 128, b"DICM"
_DEFER = 64 * 1024  # values longer than this (the pixel data) are read only when used
_DEFLATED = "1.2.840.10008.1.2.1.99"
_PIXELS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_BITS = (1, 8, 16, 32, 64)
# Transfer syntaxes whose decoders gan does not install: the modules that decode them, and
# where to get one.
_EXTRA = "uv sync --extra dicom, or pip install 'gan[dicom]'"
_GPL = "python-gdcm, or the GPL-3 pylibjpeg-libjpeg"
_NEEDS = {
    "JPEG-LS": (("jpeg_ls", "libjpeg", "gdcm"), f"pyjpegls ({_EXTRA})"),
    "HTJ2K": (("openjpeg",), f"pylibjpeg-openjpeg ({_EXTRA})"),
    "JPEG 2000": (("openjpeg", "gdcm"), f"pylibjpeg-openjpeg ({_EXTRA})"),
    "JPEG Lossless": (("libjpeg", "gdcm"), _GPL),
    "JPEG Extended": (("libjpeg", "gdcm"), _GPL),
}


def is_dicom(path: Any) -> bool:
    """Whether a file (a Path, an archive member, an s3 object in memory) starts like a
    DICOM file: a 128-byte preamble, then b'DICM'."""
    try:
        with path.open("rb") as f:
            return f.read(_MAGIC_AT + 4)[_MAGIC_AT:] == _MAGIC
    except OSError:
        return False


def _settings() -> None:
    """Read what files say, as they say it: pydicom's validation warnings are not ours."""
    import pydicom.config

    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(pydicom|gan\.data\.dicom)\b")


def _check_inflated(stream: BinaryIO, cap: int) -> None:
    """A deflated dataset inflates to at most `cap` bytes (pydicom inflates it at once)."""
    inflater, total = zlib.decompressobj(-zlib.MAX_WBITS), 0
    while chunk := stream.read(1 << 20):
        while chunk:
            total += len(inflater.decompress(chunk, 1 << 20))
            if total > cap:
                raise ValueError(f"its deflated dataset inflates to more than {cap:,} bytes")
            chunk = inflater.unconsumed_tail


def _read_header(stream: BinaryIO):
    """The dataset, its large values (the pixel data) not yet read; ValueError when the file
    is no DICOM file, too large, or would inflate past the cap."""
    import pydicom
    from pydicom.filereader import read_dataset, read_preamble

    cap = bounded(MAX_OBJECT_BYTES)
    stream.seek(0, 2)
    if stream.tell() > cap:
        raise ValueError(f"the file has {stream.tell():,} bytes; the limit is {cap:,}")
    stream.seek(0)
    if stream.read(_MAGIC_AT + 4)[_MAGIC_AT:] != _MAGIC:
        raise ValueError("not a DICOM file (no 'DICM' after the 128-byte preamble)")
    stream.seek(0)
    read_preamble(stream, False)
    meta = read_dataset(stream, False, True, stop_when=lambda tag, *_: tag.group != 2)
    deflated = str(meta.get("TransferSyntaxUID", "")) == _DEFLATED
    if deflated:
        _check_inflated(stream, cap)
    stream.seek(0)
    return pydicom.dcmread(stream, defer_size=None if deflated else _DEFER, force=False)


def dicom_info(path: Any) -> tuple[bool, tuple[int, int]] | None:
    """(True: gray, (rows, columns)) of a DICOM image from its header alone, or None when the file
    holds no image within the limits or cannot be read (`decode.image_info`'s shape)."""
    _settings()
    try:
        with path.open("rb") as stream:
            rows, columns, _ = _check(_read_header(stream), None)
    except Exception:  # any failure: the decoder says why, when the file is decoded
        return None
    return True, (rows, columns)


def _what(ds: Any) -> str:
    """What kind of object a dataset is, for a reason: its SOP class, or its modality."""
    sop = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
    name = getattr(sop, "name", "") if sop else ""
    return name or str(ds.get("Modality") or "unknown kind")


def _check(ds: Any, size: tuple[int, int] | None) -> tuple[int, int, int]:
    """(rows, columns, frames) once the header's declared sizes are within the limits."""
    if not any(name in ds for name in _PIXELS):
        raise ValueError(f"holds no pixel data ({_what(ds)})")
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    frames = int(ds.get("NumberOfFrames") or 1)  # a value such as '1A' fails here
    samples, bits = int(ds.get("SamplesPerPixel") or 1), int(ds.get("BitsAllocated") or 0)
    check_pixels(columns, rows, "DICOM frame")
    if samples not in (1, 3) or bits not in _BITS or frames < 1:
        raise ValueError(f"declares {samples} samples of {bits} bits in {frames} frames")
    if rows * columns * samples * max(1, bits // 8) > bounded(MAX_IMAGE_BYTES):
        raise ValueError(f"a frame of {rows}x{columns}x{samples} at {bits} bits is too large")
    height, width = size or (rows, columns)
    check_slices(frames, height * width)
    return rows, columns, frames


def _item(ds: Any, index: int, sequence: str) -> Any:
    """The first item of `sequence` for frame `index` of an enhanced multi-frame object:
    from its per-frame functional groups, else the shared ones; None if neither has it."""
    places = (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0))
    for groups, at in places:
        items = ds.get(groups) or []
        if at < len(items) and items[at].get(sequence):
            return items[at].get(sequence)[0]
    return None


def _rescale(frame: np.ndarray, ds: Any, index: int) -> np.ndarray:
    """Stored values -> modality values (Hounsfield units for CT): the modality LUT."""
    from pydicom.pixels import apply_modality_lut

    if ds.get("ModalityLUTSequence") or "RescaleSlope" in ds:
        return np.asarray(apply_modality_lut(frame, ds), dtype=np.float32)
    item = _item(ds, index, "PixelValueTransformationSequence")
    frame = frame.astype(np.float32)
    if item is not None and "RescaleSlope" in item:
        frame = frame * float(item.RescaleSlope) + float(item.get("RescaleIntercept") or 0)
    return frame


def _first(value: Any) -> float | None:
    """A window value, the first of several; None when absent."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        value = value[0] if len(value) else None
    return None if value is None or value == "" else float(value)


def file_window(ds: Any, index: int) -> tuple[float, float] | None:
    """(low, high) of the file's own linear window for frame `index` (PS3.3 C.11.2.1.2),
    the first if it gives several; None when it gives none that is usable."""
    item = ds if "WindowCenter" in ds else _item(ds, index, "FrameVOILUTSequence")
    if item is None:
        return None
    try:
        center, width = _first(item.get("WindowCenter")), _first(item.get("WindowWidth"))
    except (TypeError, ValueError):  # a value that is no number: as if none were given
        return None
    if center is None or width is None or not np.isfinite([center, width]).all() or width < 1:
        return None
    return center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2


def _to_unit(gray: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """Intensities -> [0, 1]: through `window` (low, high), else the slice's percentiles."""
    if window is None:
        low, high = (float(v) for v in np.percentile(gray, PERCENTILES))
    else:
        low, high = window
    if high <= low:
        high = low + 1.0
    return np.clip((gray - low) / (high - low), 0.0, 1.0)


class DicomReader:
    """Decodes DICOM files to 1 x H x W uint8 slices (from several threads at once) and
    keeps what their headers say (modality, series, size) for the dataset's summary."""

    def __init__(self, size: tuple[int, int] | None, window: str = "percentile") -> None:
        _settings()
        self.size, self.window = size, window
        self.slices: Counter[tuple[str, str, str, str]] = Counter()
        self.unwindowed: list[str] = []  # --dicom-window file: slices with no window of their own
        self._lock = threading.Lock()

    def __call__(self, path: Any) -> list[np.ndarray]:
        with path.open("rb") as stream:  # a Path, or a MemoryFile (an s3 object, --no-cache)
            ds = _read_header(stream)
            rows, columns, frames = _check(ds, self.size)
            try:
                slices = self._decode(ds, frames, str(path))
            except RuntimeError as exc:  # pydicom: no plugin here decodes this syntax
                raise ValueError(_undecodable(ds, exc)) from None
        series = str(ds.get("SeriesInstanceUID") or "")
        key = (str(ds.get("Modality") or "unknown"), series, str(ds.get("SeriesDescription") or ""))
        with self._lock:
            self.slices[(*key, f"{rows}x{columns}")] += len(slices)
        return slices

    def _decode(self, ds: Any, frames: int, name: str) -> list[np.ndarray]:
        from pydicom.pixels import apply_color_lut, iter_pixels

        photometric = str(ds.get("PhotometricInterpretation") or "").upper()
        slices, unwindowed = [], 0
        for index, frame in enumerate(iter_pixels(ds)):
            if index >= frames:
                break
            if photometric == "PALETTE COLOR":
                frame = apply_color_lut(frame, ds)
            if frame.ndim == 3:  # RGB (YBR is converted by pydicom): luminance, as PIL's "L"
                gray = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            else:
                gray = _rescale(frame, ds, index)
            gray = np.nan_to_num(gray, nan=0.0, posinf=0.0, neginf=0.0)
            window = file_window(ds, index) if self.window == "file" and frame.ndim == 2 else None
            unwindowed += self.window == "file" and window is None
            unit = _to_unit(gray, window)
            if photometric == "MONOCHROME1":  # the lowest value is shown white
                unit = 1.0 - unit
            slices.append(self._resized(unit))
        if unwindowed:
            with self._lock:
                self.unwindowed.append(name)
        return slices

    def _resized(self, unit: np.ndarray) -> np.ndarray:
        img = Image.fromarray((unit * 255.0).round().astype(np.uint8), mode="L")
        if self.size is not None and img.size != (self.size[1], self.size[0]):
            img = img.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.uint8)[None]

    def finish(self, extra: dict[str, Any]) -> dict[str, Any]:
        """`extra` with the slices' `summary`, once --dicom-window file's note is said."""
        if self.unwindowed:
            logger.info(
                f"{len(self.unwindowed)} DICOM file(s) declare no usable window (first: "
                f"{self.unwindowed[0]}); their slices were windowed at their own "
                f"{PERCENTILES[0]:g}-{PERCENTILES[1]:g}th percentiles."
            )
        return extra | {"dicom": self.summary()} if self.slices else extra

    def summary(self) -> dict[str, Any]:
        """Slices by modality, series and size (rows x columns), for run.json and data info."""
        modalities: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        series: dict[str, dict[str, Any]] = {}
        for (modality, uid, description, size), count in sorted(self.slices.items()):
            modalities[modality] += count
            sizes[size] += count
            entry = series.setdefault(
                uid, {"uid": uid, "description": description, "modality": modality, "slices": 0}
            )
            entry["slices"] += count
        return {
            "slices": sum(self.slices.values()),
            "modalities": dict(modalities.most_common()),
            "sizes": dict(sizes.most_common()),
            "series": sorted(series.values(), key=lambda s: -s["slices"]),
        }


def _undecodable(ds: Any, exc: Exception) -> str:
    """Why pydicom could not decode the pixel data; where the decoder for its syntax is not
    installed, which package is."""
    syntax = ds.file_meta.get("TransferSyntaxUID")
    name = getattr(syntax, "name", "") or str(syntax or "an unknown syntax")
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = lines[1] if len(lines) > 1 and "plugins" in lines[0] else (lines or [""])[0]
    for key, (modules, package) in _NEEDS.items():
        if key in name and not any(importlib.util.find_spec(m) for m in modules):
            if "missing" in lines[0]:  # no decoder for the syntax at all
                return f"its {name} pixel data needs {package}"
            return f"its {name} pixel data was not decoded; try {package} ({detail})"
    return f"its {name} pixel data could not be decoded ({detail})"
