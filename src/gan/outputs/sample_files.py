"""The files `gan sample` writes: a grid, PNGs (one subfolder a class), an .npy array and
its labels, a GIF.

Every file is written whole through a temporary file renamed over its name
(`gan.atomic.atomic_file`): a link planted at the name is replaced, never written
through. A folder `gan sample` writes into must be a folder of its own: a link there (to a
folder elsewhere, or dangling) is refused before any image is written. Class folders have
names no two classes share (a file system may not tell `A` from `a`), and the labels file
holds one class a line whatever a class's name holds.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from gan import images
from gan.atomic import atomic_file, atomic_write
from gan.errors import GanError


def safe_name(label: str) -> str:
    """A class name as a file name's part: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "class"


def class_folders(classes: list[str]) -> list[str]:
    """A folder name for each class: its `safe_name`, where no other class's is the same
    (ignoring case); else `<safe name>-<class index>`, which no two classes share (the part
    after the last '-' is the index)."""
    bases = [safe_name(name) for name in classes]
    shared = Counter(base.casefold() for base in bases)
    names = [
        base if shared[base.casefold()] == 1 else f"{base}-{i}" for i, base in enumerate(bases)
    ]
    if len({name.casefold() for name in names}) < len(names):  # a class named like an index
        names = [f"{base}-{i}" for i, base in enumerate(bases)]
    return names


def label_line(name: str) -> str:
    """A class name on one line: a backslash, line breaks, other control characters and
    non-ASCII letters as Python escapes (read back with `codecs.decode(line,
    "unicode_escape")`); a plain name is itself."""
    return name.encode("unicode_escape").decode("ascii")


def own_folder(folder: Path) -> Path:
    """`folder`, made if absent; a link there (to a folder or not) is refused."""
    if folder.is_symlink():
        raise GanError(
            f"{folder} is a link; give --out a folder of its own, or remove the link "
            "(nothing was written)."
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _image_format(path: Path) -> str:
    from PIL import Image

    return Image.registered_extensions().get(path.suffix.lower(), "PNG")


def write_grid(fakes: torch.Tensor, out: Path, nrow: int | None) -> None:
    from torchvision.utils import save_image

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out, durable=False) as f:
        save_image(images.grid(fakes, nrow), f, format=_image_format(out))


def write_pngs(
    fakes: torch.Tensor, out: Path, labels: torch.Tensor | None, classes: list[str] | None
) -> None:
    """One PNG an image in `out`, or with `classes` in one subfolder a class (the layout
    the folder dataset reads back as labels); every folder checked before any image."""
    from torchvision.utils import save_image

    own_folder(out)
    folders = [out]
    if classes and labels is not None:
        names = class_folders(classes)
        used = sorted(set(labels.tolist()))
        by_class = {c: own_folder(out / names[c]) for c in used}
        folders = [by_class[int(c)] for c in labels]
    for i, image in enumerate(images.to_unit(fakes)):
        with atomic_file(folders[i % len(folders)] / f"{i:05d}.png", durable=False) as f:
            save_image(image, f, format="PNG")


def write_gif(fakes: torch.Tensor, out: Path, steps: int) -> None:
    walks = fakes.view(-1, steps, *fakes.shape[1:])  # walk x step x C x H x W
    frames = [images.grid(walks[:, t]) for t in range(steps)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out, durable=False) as f:
        images.save_gif(frames, f)


def write_npy(
    fakes: torch.Tensor, out: Path, labels: torch.Tensor | None, classes: list[str] | None
) -> None:
    """The array, and with `classes` the class of each image in `<name>-labels.txt`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out, durable=False) as f:
        np.save(f, images.to_unit(fakes).numpy())
    if classes and labels is not None:
        lines = [label_line(classes[int(i)]) for i in labels]
        atomic_write(out.with_name(out.stem + "-labels.txt"), "\n".join(lines) + "\n")
