"""MNIST from its IDX files (gzipped or not), offline; torchvision downloads only on request."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from loguru import logger

from gan.config import DataConfig
from gan.data import ImageData
from gan.data.classes import chosen, unlabelled
from gan.data.decode import require_path, resize_batch
from gan.data.limits import MAX_IDX_BYTES, bounded, check_pixels
from gan.data.s3 import fetch, is_s3
from gan.data.sources import s3_settings
from gan.errors import GanError

_SPLITS = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
_LABELS = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}
_SUFFIXES = ("idx3-ubyte", "idx3-ubyte.gz", "idx1-ubyte", "idx1-ubyte.gz")
_TRAIN_SIZE = 55_000  # seed 001: 55,000 train / 5,000 validation
_SPLIT_SEED = 1234


def _size(path: Any) -> int:
    """Bytes stored (compressed or not): a file's size, or an in-memory object's length."""
    return path.stat().st_size if isinstance(path, Path) else len(path.read_bytes())


@contextmanager
def _open(path: Any) -> Iterator[BinaryIO]:
    """The file as a stream, decompressed as it is read when gzipped."""
    stream = path.open("rb")  # a Path, or a MemoryFile (an s3 object read with --no-cache)
    try:
        yield gzip.GzipFile(fileobj=stream) if path.name.endswith(".gz") else stream
    finally:
        stream.close()


def _read(path: Any, header: int, payload: Callable[[bytes], int]) -> tuple[bytes, bytes]:
    """(header bytes, payload bytes) of an IDX file. `payload(header)` says how many bytes
    the header declares (raising GanError when too many); never more than that (plus one,
    to tell a longer file) is inflated or read."""
    try:
        with _open(path) as stream:
            head = stream.read(header)
            if len(head) < header:
                return head, b""
            size = payload(head)
            return head, stream.read(size + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise GanError(f"MNIST file {path} cannot be read ({exc}); replace it.") from None


def _idx_limit(path: Any) -> int:
    """The payload bytes an IDX file may declare; a plain file larger than that is refused
    before it is read."""
    limit = bounded(MAX_IDX_BYTES)
    if not path.name.endswith(".gz") and _size(path) > limit + 16:
        raise GanError(
            f"MNIST file {path} is {_size(path):,} bytes, more than the {limit:,} an IDX "
            "file may hold here; replace it."
        )
    return limit


def read_idx_labels(path: Any, count: int, first: int | None = None) -> np.ndarray:
    """Parse an IDX1 label file (optionally gzipped) of `count` digits into uint8; with
    `first`, only the labels of the first that many digits are read."""
    _idx_limit(path)
    mismatch = GanError(
        f"MNIST labels {path} do not match the {count} images beside them; replace them."
    )

    def declared(head: bytes) -> int:
        if int.from_bytes(head[:4], "big") != 0x801:
            raise GanError(f"MNIST file {path} is not an IDX label file; replace it.")
        if int.from_bytes(head[4:8], "big") != count:
            raise mismatch
        return kept

    kept = count if first is None else min(first, count)
    head, raw = _read(path, 8, declared)
    if len(head) < 8:
        raise GanError(f"MNIST file {path} is not an IDX label file; replace it.")
    if kept < count:
        raw = raw[:kept]  # the byte after them only shows that there are more
    labels = np.frombuffer(raw, dtype=np.uint8)
    if len(labels) != kept or (kept and labels.max() > 9):
        raise mismatch
    return labels


def idx_count(path: Any) -> int:
    """The number of images an IDX3 file's header declares (only the header is read)."""
    head, _ = _read(path, 16, lambda head: 0)
    if len(head) < 16 or int.from_bytes(head[:4], "big") != 0x803:
        raise GanError(f"MNIST file {path} is not an IDX image file; replace it.")
    return int.from_bytes(head[4:8], "big")


def read_idx_images(path: Any, first: int | None = None) -> np.ndarray:
    """Parse an IDX3 image file (optionally gzipped) into a uint8 array N x H x W; with
    `first`, only the first that many images are read (and inflated)."""
    limit = _idx_limit(path)
    not_idx = GanError(f"MNIST file {path} is not an IDX image file; replace it.")

    def declared(head: bytes) -> int:
        if int.from_bytes(head[:4], "big") != 0x803:
            raise not_idx
        n, h, w = (int.from_bytes(head[i : i + 4], "big") for i in (4, 8, 12))
        try:
            check_pixels(w, h, "each image")
        except ValueError as exc:
            raise GanError(f"MNIST file {path}: {exc}; replace it.") from None
        if n < 1 or n * h * w > limit:
            raise GanError(
                f"MNIST file {path} declares {n:,} images of {h}x{w} ({n * h * w:,} bytes), "
                f"not between 1 image and the limit of {limit:,} bytes; replace it."
            )
        return (n if first is None else min(n, first)) * h * w

    head, raw = _read(path, 16, declared)
    if len(head) < 16:
        raise not_idx
    n, h, w = (int.from_bytes(head[i : i + 4], "big") for i in (4, 8, 12))
    if first is not None and first < n:
        n, raw = first, raw[: first * h * w]  # the byte after them only shows there are more
    if len(raw) > n * h * w:
        raise GanError(
            f"MNIST file {path} is corrupt (more pixel bytes than the {n} images of {h}x{w} "
            "its header declares); replace it."
        )
    if len(raw) < n * h * w:
        raise GanError(
            f"MNIST file {path} is truncated or corrupt ({len(raw)} pixel bytes "
            f"for {n} images of {h}x{w}); replace it."
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(n, h, w)


def find_split(root: Path, split: str, names: dict[str, str] = _SPLITS) -> Path | None:
    """Look in DIR, DIR/raw and DIR/MNIST/raw for the split's file, gzipped or not."""
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        for suffix in ("", ".gz"):
            candidate = folder / (names[split] + suffix)
            if candidate.is_file():
                return candidate
    return None


def _pick(files: list[Any], name: str) -> Any | None:
    return next((f for f in files if f.name in (name, name + ".gz")), None)


def _locate(config: DataConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """({"train", "test", "train-labels", "test-labels"}: file or None, summary extras),
    from a folder or an s3:// prefix."""
    if is_s3(config.source):
        fetched = fetch(config.source, _SUFFIXES, s3_settings(config))
        found = {s: _pick(fetched.files, _SPLITS[s]) for s in _SPLITS}
        found |= {f"{s}-labels": _pick(fetched.files, _LABELS[s]) for s in _LABELS}
        return found, fetched.summary()
    root = Path(config.source or "data")
    if config.download:
        root.mkdir(parents=True, exist_ok=True)
        _download(root)
    root = require_path(root)
    if not root.is_dir():
        raise GanError(f"--data {root} is a file; MNIST needs the folder that holds the IDX files.")
    found = {s: find_split(root, s) for s in _SPLITS}
    found |= {f"{s}-labels": find_split(root, s, _LABELS) for s in _LABELS}
    return found, {}


def _download(root: Path) -> None:
    from torchvision.datasets import MNIST

    logger.info("Downloading MNIST into {} (torchvision)", root)
    try:
        for train in (True, False):
            MNIST(str(root), train=train, download=True)
    except Exception as exc:
        raise GanError(
            f"Downloading MNIST into {root} failed ({exc}); check the network."
        ) from None


def _kept(split: str, count: int, limit: int | None) -> np.ndarray | None:
    """The indices of the images kept, in order (None: all of them): the training split's
    first 55,000 of a fixed permutation, then the first --limit."""
    kept = None
    if split == "train" and count == 60_000:
        kept = np.sort(np.random.default_rng(_SPLIT_SEED).permutation(60_000)[:_TRAIN_SIZE])
    if limit is not None:
        kept = kept[:limit] if kept is not None else np.arange(min(count, limit))
    return kept


def load_mnist(config: DataConfig, size: tuple[int, int] | None) -> ImageData:
    found, extra = _locate(config)
    split = "train" if found["train"] is not None else "test"
    if found[split] is None:
        raise GanError(
            f"No MNIST IDX files (train-images-idx3-ubyte or t10k-images-idx3-ubyte, "
            f"optionally .gz) in {config.source or 'data'}; point --data at them or add --download."
        )
    if split == "test":
        logger.warning(
            "MNIST training split not found in {}; training on the test split.",
            config.source or "data",
        )
    path, label_path = found[split], found[f"{split}-labels"]
    count = idx_count(path)
    # --classes comes before --limit: the digits are chosen among all the records.
    limit = None if config.classes else config.limit
    kept = _kept(split, count, limit)
    # With --limit, only the records up to the last one kept are read (and inflated).
    first = int(kept[-1]) + 1 if limit is not None and len(kept) else None
    images = read_idx_images(path, first)
    labels = read_idx_labels(label_path, count, first) if label_path is not None else None
    extra["split"] = split
    if split == "train" and count == 60_000:
        extra["held_out_for_validation"] = 60_000 - _TRAIN_SIZE
    if kept is not None:
        images, labels = images[kept], labels[kept] if labels is not None else None
    digits = tuple(range(10))
    if config.classes:  # before --limit, which then cuts the digits kept
        images, labels, digits = _of_classes(config.classes, images, labels, str(path))
        if config.limit is not None:
            images = images[: config.limit]
            labels = labels[: config.limit] if labels is not None else None
    tensor = torch.from_numpy(images.copy()).unsqueeze(1)
    if size is not None:
        tensor = resize_batch(tensor, size)
    data = ImageData(tensor, "mnist", str(path), extra)
    if labels is not None:  # the digits kept, numbered 0..k-1 in their order
        index = np.zeros(10, dtype=np.int64)
        index[list(digits)] = np.arange(len(digits))
        data.labels = torch.from_numpy(index[labels])
        data.classes = tuple(str(d) for d in digits)
    return data


def _of_classes(wanted: tuple[str, ...], images: np.ndarray, labels: Any, source: str):
    """(images, labels, digits kept) of the digits --classes names."""
    if labels is None:
        raise unlabelled(source, "no IDX label file beside it")
    digits = sorted(int(d) for d in chosen(wanted, [str(d) for d in np.unique(labels)], source))
    keep = np.isin(labels, digits)
    return images[keep], labels[keep], tuple(digits)
