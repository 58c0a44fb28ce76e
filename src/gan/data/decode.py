"""Finding and decoding image files into uint8 arrays; resizing with real interpolation."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from loguru import logger
from PIL import Image

from gan.data.limits import (
    check_pixels,
    dataset_problem,
    memory_budget,
    usable_cores,
)
from gan.data.modes import Conversions, is_gray, to_channels, upright_first_frame, upright_size
from gan.errors import GanError
from gan.walk import MAX_DATA_DEPTH, Walk

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
# What PIL may identify those files as; any other format (PSD, ICO, XBM, EPS, ...) is refused,
# whatever the file's name. (PIL's JPEG reader also opens MPO: a JPEG with several pictures.)
PIL_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF")


def require_path(path: Path, flag: str = "--data") -> Path:
    """Expand ~ and fail with one sentence when the path does not exist."""
    path = Path(os.path.expanduser(str(path)))
    if not path.exists():
        raise GanError(f"{flag} {path} does not exist; check the path.")
    return path


def find_files(
    root: Path, suffixes: Iterable[str], sniff: Callable[[Path], bool] | None = None
) -> list[Path]:
    """Files under root (recursively, hidden ones skipped) whose name ends with a suffix,
    or, when `sniff` is given, regular files it accepts by their first bytes (DICOM files
    often have no suffix). Named pipes, devices and sockets are left out (reading one could
    block forever); so are folders nested deeper than `MAX_DATA_DEPTH` levels (walked
    without recursion: no depth crashes the walk), each left out said in one warning."""
    suffixes = tuple(s.lower() for s in suffixes)
    if root.is_file():
        named = root.name.lower().endswith(suffixes)
        return [root] if named or (sniff is not None and sniff(root)) else []
    found, odd = [], []
    walk = Walk(root, hidden=False, max_depth=MAX_DATA_DEPTH)
    for folder, entries in walk:
        for entry in entries:  # a link to a file is its file; one to a folder is not entered
            if _is_folder(entry):
                continue
            path = folder / entry.name
            if entry.name.lower().endswith(suffixes):
                regular = path.is_file() or not path.exists()  # missing: reported when read
                (found if regular else odd).append(path)
            elif sniff is not None and path.is_file() and sniff(path):
                found.append(path)
    if odd:
        logger.warning(
            "Skipped {} entries under {} that are not regular files (first: {}).",
            len(odd), root, odd[0],
        )  # fmt: skip
    if walk.too_deep:
        logger.warning(
            "Skipped {} folder(s) under {} nested deeper than {} levels; move the images "
            "nearer to the top.", walk.too_deep, root, MAX_DATA_DEPTH,
        )  # fmt: skip
    return found


def _is_folder(entry: os.DirEntry) -> bool:
    """Whether an entry is a folder or a link to one; a link that cannot be followed (a
    loop) is not: if named like data, reading it fails and is counted with the rest."""
    try:
        return entry.is_dir()
    except OSError:  # ELOOP: DirEntry.is_dir raises it where Path.is_file says False
        return False


def _quiet_pil() -> None:
    """PIL's complaints about a file's metadata ("Corrupt EXIF data", a TIFF tag of the
    wrong size) are not shown, as they would be once per file: a file that decodes is read,
    one that does not is skipped and counted in the loader's one warning."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


@contextmanager
def _pil_warnings() -> Iterator[None]:
    """PIL's DecompressionBombWarning raised as an error, its other warnings quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        _quiet_pil()
        yield


@contextmanager
def _open_image(path: Any) -> Iterator[Image.Image]:
    """An image of a supported format, opened and its declared size checked: nothing is
    decoded yet. An in-memory file (an s3 object read with --no-cache) is closed after, so
    that nothing left for the garbage collector keeps the object's bytes alive."""
    with (
        nullcontext(path) if isinstance(path, Path) else path.open("rb") as file,
        Image.open(file, formats=PIL_FORMATS) as img,
    ):
        check_pixels(img.width, img.height)
        yield img


def read_image(
    path: Any, channels: int, size: tuple[int, int] | None, notes: Conversions | None = None
) -> np.ndarray:
    """One image file -> uint8 array C x H x W, resized to (H, W) when size is given: its
    first frame, upright, in the dataset's channels (`gan.data.modes`; `notes` counts what
    was converted)."""
    with _pil_warnings(), _open_image(path) as img:
        img = upright_first_frame(img, notes)
        img = (notes.image if notes is not None else to_channels)(img, channels)[0]
    if size is not None and img.size != (size[1], size[0]):
        if notes is not None and img.height * img.width < size[0] * size[1]:
            notes.note(f"{{}} enlarged to {size[0]}x{size[1]} (bilinear: no detail is added)")
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=None)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def image_or(
    path: Any,
    read: Callable[[Any], np.ndarray],
    other: Callable[[Any], list[np.ndarray]],
    is_other: Callable[[Any], bool],
) -> list[np.ndarray]:
    """A file named as an image read by `read`; any other by `other`, and so is a file named
    as an image that PIL cannot read and `is_other` recognises by its bytes (a DICOM file
    named .tif: its 128-byte preamble may be a TIFF header)."""
    if path.name.lower().endswith(IMAGE_SUFFIXES):
        try:
            return [read(path)]
        except Exception:
            if not is_other(path):
                raise
    return other(path)


def image_info(path: Any) -> tuple[bool, tuple[int, int]] | None:
    """(whether it is gray, (H, W) once upright) from the header alone, or None when the
    file cannot be opened (or declares more pixels than `read_image` would decode)."""
    try:
        with _pil_warnings(), _open_image(path) as img:
            return is_gray(img), upright_size(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, RuntimeWarning):
        return None  # RuntimeWarning: PIL's DecompressionBombWarning, raised as an error


def decode_all(
    paths: list[Any],
    decode: Callable[[Any], list[np.ndarray]],
    root: Any,
    counts: list[int] | None = None,
    refused: Sequence[tuple[Any, str]] = (),
) -> tuple[list[np.ndarray], int]:
    """Decode files in a thread pool, one thread per core; unreadable ones are skipped,
    counted and warned of, in one warning with the `refused` ones (never opened: (name,
    reason)). `counts`, when given, receives the number of images each file gave (0:
    skipped). Decoding stops, in one sentence, once the images pass a dataset's share of
    the memory (`limits.dataset_problem`): files that each pass their own checks can
    still add up to more than the machine holds."""
    arrays: list[np.ndarray] = []
    failures: list[tuple[Any, str]] = list(refused)
    held, budget = 0, memory_budget()

    def attempt(path: Path) -> list[np.ndarray] | str:
        try:
            return decode(path)
        except Exception as exc:  # any decoder failure means "this file is unreadable"
            return f"{type(exc).__name__}: {exc}".strip()

    workers = usable_cores()  # decoding is CPU-bound: more threads than cores only queue
    _quiet_pil()  # for the process: catch_warnings in several threads may restore any list
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, result in zip(paths, pool.map(attempt, paths), strict=True):
            if isinstance(result, str):
                failures.append((path, result))
            else:
                arrays.extend(result)
                held += sum(a.nbytes for a in result)
            if counts is not None:
                counts.append(0 if isinstance(result, str) else len(result))
            if budget is not None and held > budget:
                pool.shutdown(wait=True, cancel_futures=True)  # the files not yet begun
                raise GanError(_too_much(len(arrays), held, root))
    if failures and not arrays:
        where, reason = failures[0]
        raise GanError(
            f"No readable images were found in {root}: {len(failures)} file(s) could not be "
            f"read (first: {where}: {reason[:200]}); check the path and file types."
        )
    return arrays, report_failures(failures, root)


def _too_much(images: int, held: int, root: Any) -> str:
    return (
        f"The images of {root} do not fit in memory ({dataset_problem(images, held)}); use "
        "fewer files, or a smaller --image-size."
    )


def report_failures(failures: list[tuple[Any, str]], root: Any) -> int:
    """Warn once about the unreadable files (or objects), naming the first three and why,
    and say how many there were."""
    if failures:
        first = "; ".join(f"{where}: {reason[:200]}" for where, reason in failures[:3])
        count = len(failures)
        logger.warning("Skipped {} unreadable file(s) under {} (first: {}).", count, root, first)
    return len(failures)


def stack(arrays: list[np.ndarray], root: Any) -> torch.Tensor:
    """The images as one N x C x H x W tensor, once they are known to fit (stacking copies)."""
    if not arrays:
        raise GanError(f"No readable images were found in {root}; check the path and file types.")
    held = sum(a.nbytes for a in arrays)
    if dataset_problem(len(arrays), held) is not None:
        raise GanError(_too_much(len(arrays), held, root))
    return torch.from_numpy(np.stack(arrays))


def resize_batch(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a uint8 N x C x H x W tensor with antialiased bilinear interpolation, once
    the resized images are known to fit in memory."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    count, channels = images.shape[:2]
    problem = dataset_problem(count, count * channels * size[0] * size[1])
    if problem is not None:
        raise GanError(
            f"The images resized to {size[0]}x{size[1]} would not fit in memory ({problem}); "
            "give a smaller --image-size, or use fewer images (--limit)."
        )
    out = []
    for chunk in images.split(1024):
        x = F.interpolate(chunk.float(), size=size, mode="bilinear", antialias=True)
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)
