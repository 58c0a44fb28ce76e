"""Any PIL image -> the dataset's channels (L or RGB), upright, its first frame; and the one
line per load that says what was converted and how many.

What is done to each kind of image (docs/datasets.md, "What gan does with odd files"):
transparency (RGBA, LA, PA, a palette or PNG with a transparent colour) is composited on
white, as viewers and browsers show it; 16-bit, 32-bit and float images are scaled from
their own lowest to highest value; CMYK, YCbCr, LAB and HSV go through PIL's conversion to
RGB; grayscale becomes RGB by copying it to the three channels, colour becomes grayscale by
PIL's ITU-R 601-2 luma. The EXIF orientation is applied, and an animation (GIF, APNG, WebP,
a multi-page TIFF) gives its first frame.
"""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
from loguru import logger
from PIL import Image, ImageOps

BACKGROUND = (255, 255, 255)  # what a transparent pixel becomes: white
_WIDE = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}  # scaled from their own range
_ORIENTATION = 0x0112  # EXIF tag; values 5-8 turn the image by 90 degrees
_WORDS = {
    "1": "1-bit",
    "L": "grayscale",
    "LA": "grayscale with alpha",
    "La": "grayscale with alpha",
    "P": "palette",
    "PA": "palette with alpha",
    "RGBA": "RGBA",
    "RGBa": "RGBA",
    "I": "32-bit",
    "F": "float",
}


def _word(mode: str) -> str:
    return "16-bit" if mode.startswith("I;16") else _WORDS.get(mode, mode)


def has_alpha(img: Image.Image) -> bool:
    """Whether the image has transparency: an alpha channel or a transparent colour."""
    return img.mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in img.info


def is_gray(img: Image.Image) -> bool:
    """Whether the image holds gray only, from its header: a gray mode, or a palette of
    grays (a GIF or PNG of a scan often has one)."""
    if img.mode in ("1", "L", "LA", "La") or img.mode in _WIDE:
        return True
    if img.mode not in ("P", "PA") or img.palette is None:
        return False
    palette = img.palette
    colours = np.frombuffer(bytes(palette.palette), np.uint8)
    if palette.mode != "RGB" or colours.size % 3:
        return False
    colours = colours.reshape(-1, 3)
    return bool((colours == colours[:, :1]).all())


def upright_size(img: Image.Image) -> tuple[int, int]:
    """(H, W) once the EXIF orientation is applied, from the header alone (a PNG's EXIF that
    follows its pixels is not read here: only `upright` sees it)."""
    turned = False
    if img.format != "PNG" or "exif" in img.info:  # a PNG's getexif would decode the pixels
        turned = _orientation(img) in (5, 6, 7, 8)
    return (img.width, img.height) if turned else (img.height, img.width)


def to_channels(img: Image.Image, channels: int) -> tuple[Image.Image, bool]:
    """A loaded image converted to L (channels 1) or RGB; and whether it was composited."""
    target = "L" if channels == 1 else "RGB"
    if img.mode in _WIDE:
        arr = np.asarray(img, dtype=np.float64)
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.round().astype(np.uint8), mode="L").convert(target), False
    alpha = has_alpha(img)
    if alpha:
        rgba = img.convert("RGBA")
        under = Image.new("RGBA", img.size, (*BACKGROUND, 255))
        img = Image.alpha_composite(under, rgba).convert("RGB")
    elif img.mode not in ("1", "L", "RGB"):  # P, CMYK, YCbCr, LAB, HSV, ...
        img = img.convert("RGB")
    return img.convert(target), alpha


class Conversions:
    """What a load did to its images, counted from the decoding threads, said in one line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._modes: Counter[tuple[str, bool]] = Counter()
        self._notes: Counter[str] = Counter()
        self.images = 0

    def image(self, img: Image.Image, channels: int) -> tuple[Image.Image, bool]:
        """`to_channels`, counted: the mode (and alpha) of each image not already L or RGB."""
        mode = img.mode
        out, alpha = to_channels(img, channels)
        with self._lock:
            self.images += 1
            if mode != out.mode or alpha:
                self._modes[(mode, alpha)] += 1
        return out, alpha

    def note(self, what: str, count: int = 1) -> None:
        """Count something else done to the images: `what` has a {} for the count ('{} 4-D
        series: first volume only')."""
        with self._lock:
            self._notes[what] += count

    def line(self, channels: int) -> str | None:
        """'Converted 5 of 40 images to RGB (3 RGBA on white, 2 CMYK); ...', or None."""
        parts = []
        if self._modes:
            items = ", ".join(
                f"{n} {_word(mode)}{' on white' if alpha else ''}"
                + (" each scaled from its own range" if mode in _WIDE else "")
                for (mode, alpha), n in self._modes.most_common()
            )
            target = "grayscale" if channels == 1 else "RGB"
            done = sum(self._modes.values())
            parts.append(f"Converted {done} of {self.images} images to {target} ({items})")
        parts += [what.format(n) for what, n in self._notes.most_common()]
        return "; ".join(parts) + "." if parts else None

    def report(self, channels: int) -> None:
        """Log `line` (once per load), if anything was done."""
        line = self.line(channels)
        if line is not None:
            logger.info(line)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation, 1 (upright) where there is none or it cannot be read."""
    try:
        value = img.getexif().get(_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block does not make the pixels unreadable
        return 1
    return value if value in range(1, 9) else 1


def upright_first_frame(img: Image.Image, notes: Conversions | None) -> Image.Image:
    """The loaded first frame, turned by its EXIF orientation; animations counted."""
    if getattr(img, "is_animated", False) and notes is not None:
        notes.note("{} animated: first frame used")
    img.load()  # the first frame (page) only
    if _orientation(img) == 1:
        return img
    if notes is not None:
        notes.note("{} turned upright by their EXIF orientation")
    return ImageOps.exif_transpose(img)
