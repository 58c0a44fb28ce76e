"""Finding and decoding image files into uint8 arrays; resizing with real interpolation."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from loguru import logger
from PIL import Image

from gan.errors import GanError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def require_path(path: Path, flag: str = "--data") -> Path:
    """Expand ~ and fail with one sentence when the path does not exist."""
    path = Path(os.path.expanduser(str(path)))
    if not path.exists():
        raise GanError(f"{flag} {path} does not exist; check the path.")
    return path


def find_files(root: Path, suffixes: Iterable[str]) -> list[Path]:
    """Files under root (recursively, hidden ones skipped) whose name ends with a suffix."""
    suffixes = tuple(s.lower() for s in suffixes)
    if root.is_file():
        return [root] if root.name.lower().endswith(suffixes) else []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower().endswith(suffixes):
                found.append(Path(dirpath) / name)
    return found


def _to_uint8(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode to L or RGB; 16-bit and float images are min-max scaled."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.round().astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "P", "PA"):
        img = img.convert("RGBA").convert("RGB")
    return img.convert("L" if channels == 1 else "RGB")


def open_binary(file: Any) -> Any:
    """A path for PIL and friends, or an in-memory file (an s3 object read with --no-cache)."""
    return file if isinstance(file, Path) else file.open("rb")


def read_image(path: Any, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """One image file -> uint8 array C x H x W, resized to (H, W) when size is given."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(open_binary(path)) as img:
            img.load()
            img = _to_uint8(img, channels)
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=None)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def image_info(path: Any) -> tuple[str, tuple[int, int]] | None:
    """(mode, (H, W)) from the header alone, or None when the file cannot be opened."""
    try:
        with Image.open(open_binary(path)) as img:
            return img.mode, (img.height, img.width)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def decode_all(
    paths: list[Any],
    decode: Callable[[Any], list[np.ndarray]],
    root: Any,
    counts: list[int] | None = None,
) -> tuple[list[np.ndarray], int]:
    """Decode files in a small thread pool; unreadable ones are skipped, counted and warned of.
    `counts`, when given, receives the number of images each file gave (0: skipped)."""
    arrays: list[np.ndarray] = []
    failures: list[tuple[Path, str]] = []

    def attempt(path: Path) -> list[np.ndarray] | str:
        try:
            return decode(path)
        except Exception as exc:  # any decoder failure means "this file is unreadable"
            return f"{type(exc).__name__}: {exc}".strip()

    workers = min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, result in zip(paths, pool.map(attempt, paths), strict=True):
            if isinstance(result, str):
                failures.append((path, result))
            else:
                arrays.extend(result)
            if counts is not None:
                counts.append(0 if isinstance(result, str) else len(result))
    return arrays, report_failures(failures, root)


def report_failures(failures: list[tuple[Any, str]], root: Any) -> int:
    """Warn once about the unreadable files (or objects) and say how many there were."""
    if failures:
        where, reason = failures[0]
        logger.warning(
            "Skipped {} unreadable file(s) under {} (first: {}: {}).",
            len(failures),
            root,
            where,
            reason[:200],
        )
    return len(failures)


def stack(arrays: list[np.ndarray], root: Any) -> torch.Tensor:
    if not arrays:
        raise GanError(f"No readable images were found in {root}; check the path and file types.")
    return torch.from_numpy(np.stack(arrays))


def resize_batch(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a uint8 N x C x H x W tensor with antialiased bilinear interpolation."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    out = []
    for chunk in images.split(1024):
        x = F.interpolate(chunk.float(), size=size, mode="bilinear", antialias=True)
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)
