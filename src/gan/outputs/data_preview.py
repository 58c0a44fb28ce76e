"""`gan data preview`: a grid of a dataset's first images as training sees them (decoded
and resized by its loader), and with `--augment` the same images augmented beside them.

Only the images shown are read: the loader is asked for the first `--num` (its `--limit`:
files, objects or BPS rows in name order, MNIST records from the start), so a folder of
100,000 images is listed but not decoded. The augmentation is training's own
(`gan.training.augment.Augmenter`, seeded), on the images scaled to [-1, 1] as training
scales its batches: a zero-filled gap or a cut-out square is mid-gray.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from gan.config import DataConfig
from gan.config.values import augment_policy, augment_strength
from gan.data import load_dataset
from gan.errors import GanError
from gan.images import grid, save_picture

GAP = 8  # pixels of white between the plain grid and the augmented one


@dataclass
class Preview:
    """What `preview` wrote: the file, the images in [-1, 1] as loaded and as augmented
    (None without a policy), and a line saying what the picture shows."""

    path: Path
    plain: torch.Tensor
    augmented: torch.Tensor | None
    caption: str


def augment_options(augment: str, augment_p: str | float) -> tuple[tuple[str, ...], float]:
    """The policy's names and a fixed probability, from --augment and --augment-p."""
    try:
        policy = augment_policy(augment)
        p = augment_strength(augment_p)
    except ValueError as exc:
        raise GanError(f"{exc}; see gan train --help for the augmentations.") from None
    if p == "auto":
        raise GanError(
            "--augment-p auto adapts during training, starting at 0; give the probability to "
            "preview, e.g. --augment-p 0.5 (1: every transform on every image)."
        )
    return (tuple(policy.split(",")) if policy != "none" else ()), float(p)


def preview(
    data: DataConfig,
    *,
    num: int = 64,
    nrow: int | None = None,
    out: Path | None = None,
    augment: str = "none",
    augment_p: str | float = 1.0,
    seed: int = 0,
) -> Preview:
    """Write the preview PNG (see the module's docstring) and say what it shows."""
    from gan.training.augment import Augmenter

    policy, p = augment_options(augment, augment_p)
    out = Path(out) if out is not None else Path(f"preview-{data.name}.png")
    if out.is_dir():
        raise GanError(f"--out {out} is a folder; give a file name such as {out}/preview.png.")
    limit = num if data.limit is None else min(num, data.limit)
    loaded = load_dataset(replace(data, limit=limit))
    images = loaded.images[:num]
    plain = images.float().div(127.5).sub(1.0)  # as training's batches (training/batches.py)
    augmented = None
    if policy:
        augmenter = Augmenter(policy, p, torch.device("cpu"), seed)
        augmented = augmenter(plain.clone())
    picture = grid(plain, nrow)
    if augmented is not None:
        white = torch.ones(picture.shape[0], picture.shape[1], GAP)
        picture = torch.cat([picture, white, grid(augmented, nrow)], dim=2)
    try:
        save_picture(picture, out)
    except OSError as exc:
        raise GanError(
            f"Could not write {out} ({exc.strerror or exc}); choose another --out."
        ) from None
    shape = "x".join(map(str, images.shape[1:]))
    caption = f"{len(images)} images of {shape} (CxHxW) from {loaded.source}, as loaded"
    if policy:
        caption += f"; right: --augment {','.join(policy)} --augment-p {p:g} (seed {seed})"
    return Preview(out, plain, augmented, caption)
