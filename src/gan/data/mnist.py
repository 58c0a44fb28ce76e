"""MNIST from its IDX files (gzipped or not), offline; torchvision downloads only on request."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from loguru import logger

from gan.config import DataConfig
from gan.data import ImageData
from gan.data.decode import require_path, resize_batch
from gan.data.s3 import fetch, is_s3
from gan.data.sources import s3_settings
from gan.errors import GanError

_SPLITS = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
_TRAIN_SIZE = 55_000  # seed 001: 55,000 train / 5,000 validation
_SPLIT_SEED = 1234


def read_idx_images(path: Any) -> np.ndarray:
    """Parse an IDX3 image file (optionally gzipped) into a uint8 array N x H x W."""
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise GanError(f"MNIST file {path} cannot be read ({exc}); replace it.") from None
    if len(raw) < 16 or int.from_bytes(raw[:4], "big") != 0x803:
        raise GanError(f"MNIST file {path} is not an IDX image file; replace it.")
    n, h, w = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    if len(raw) != 16 + n * h * w:
        raise GanError(
            f"MNIST file {path} is truncated or corrupt ({len(raw) - 16} pixel bytes "
            f"for {n} images of {h}x{w}); replace it."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, h, w)


def find_split(root: Path, split: str) -> Path | None:
    """Look in DIR, DIR/raw and DIR/MNIST/raw for the split's file, gzipped or not."""
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        for suffix in ("", ".gz"):
            candidate = folder / (_SPLITS[split] + suffix)
            if candidate.is_file():
                return candidate
    return None


def _pick(files: list[Any], split: str) -> Any | None:
    names = (_SPLITS[split], _SPLITS[split] + ".gz")
    return next((f for f in files if f.name in names), None)


def _locate(config: DataConfig) -> tuple[Any, Any, dict[str, Any]]:
    """(train file or None, test file or None, summary extras) from a folder or s3:// prefix."""
    if is_s3(config.source):
        fetched = fetch(config.source, ("idx3-ubyte", "idx3-ubyte.gz"), s3_settings(config))
        return _pick(fetched.files, "train"), _pick(fetched.files, "test"), fetched.summary()
    root = Path(config.source or "data")
    if config.download:
        root.mkdir(parents=True, exist_ok=True)
        _download(root)
    root = require_path(root)
    if not root.is_dir():
        raise GanError(f"--data {root} is a file; MNIST needs the folder that holds the IDX files.")
    return find_split(root, "train"), find_split(root, "test"), {}


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


def load_mnist(config: DataConfig, size: tuple[int, int] | None) -> ImageData:
    train_file, test_file, extra = _locate(config)
    if train_file is not None:
        images = read_idx_images(train_file)
        extra["split"] = "train"
        if len(images) == 60_000:
            order = np.random.default_rng(_SPLIT_SEED).permutation(len(images))
            images = images[np.sort(order[:_TRAIN_SIZE])]
            extra["held_out_for_validation"] = 60_000 - _TRAIN_SIZE
        path = train_file
    elif test_file is not None:
        logger.warning(
            "MNIST training split not found in {}; training on the test split.",
            config.source or "data",
        )
        images, path = read_idx_images(test_file), test_file
        extra["split"] = "test"
    else:
        raise GanError(
            f"No MNIST IDX files (train-images-idx3-ubyte or t10k-images-idx3-ubyte, "
            f"optionally .gz) in {config.source or 'data'}; point --data at them or add --download."
        )
    tensor = torch.from_numpy(images.copy()).unsqueeze(1)
    if size is not None:
        tensor = resize_batch(tensor, size)
    return ImageData(tensor, "mnist", str(path), extra)
