"""`gan sample`: checkpoint -> generator -> a grid, separate PNGs, or an .npy array."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from loguru import logger

from gan.devices import release_cached_memory, resolve_device
from gan.errors import GanError
from gan.models.generate import class_grid_rows, class_row_labels, generate_all, walk_latents
from gan.outputs import sample_files as files
from gan.outputs.generator import (
    MIN_TRUNCATION,
    bound,
    generator_from_checkpoint,
    resolve_label,
)
from gan.outputs.sample_files import safe_name
from gan.runs.folders import run_paths_for
from gan.runs.guard import check_folders

FORMATS = ("grid", "png", "npy", "gif")
_CHUNK = 256  # images generated at once, to bound memory for large --num


_GRID_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _with_suffix(out: Path, fmt: str) -> Path:
    """Give --out the extension its format needs; refuse one that cannot hold a grid."""
    if fmt in ("npy", "gif"):
        return out if out.suffix == f".{fmt}" else out.with_name(f"{out.name}.{fmt}")
    if fmt == "grid":
        if not out.suffix:
            return out.with_name(out.name + ".png")
        if out.suffix.lower() not in _GRID_SUFFIXES:
            raise GanError(
                f"--out {out} has an extension that cannot hold an image; use one of "
                f"{', '.join(_GRID_SUFFIXES)}."
            )
    return out


def default_out(
    checkpoint: Path, state: dict, fmt: str, workdir: Path, walk: bool, label: str | None = None
) -> Path:
    """Into the run's own assets/<run>/ (found from where the checkpoint lies), or
    WORKDIR/assets/<run>/ for a checkpoint kept outside a workdir."""
    paths = run_paths_for(checkpoint, state)
    if paths is not None:
        run, workdir = paths.name, paths.workdir
    else:  # a name the file stores: one part of a path, never `..` or `/`
        run = safe_name(str(state.get("run_name") or checkpoint.stem))
    assets = workdir / "assets" / run
    check_folders(workdir, (assets,), "give --out")  # no link, nowhere else
    stem = f"{'walk' if walk else 'sample'}-{state['step']:07d}"
    stem += f"-{safe_name(label)}" if label is not None else ""
    suffix = {"grid": ".png", "png": "", "npy": ".npy", "gif": ".gif"}[fmt]
    return assets / f"{stem}{suffix}"


def _check(fmt: str, truncation: float | None, interpolate: int | None) -> None:
    if fmt not in FORMATS:
        raise GanError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
    if truncation is not None and not truncation >= MIN_TRUNCATION:
        raise GanError(
            f"--truncation {truncation} must be at least {MIN_TRUNCATION} (0.5 to 2 are typical)."
        )
    if interpolate is not None and interpolate < 2:
        raise GanError(f"--interpolate {interpolate} must be at least 2 steps.")
    if fmt == "gif" and interpolate is None:
        raise GanError("--format gif animates a latent walk; give --interpolate STEPS too.")


@dataclass
class Draw:
    """What `gan sample` draws: latents (or a count), labels, the grid's row length."""

    num: int
    nrow: int | None
    latents: torch.Tensor | None = None
    labels: torch.Tensor | None = None


def _draw(generator, num, nrow, seed, truncation, interpolate, label, shape) -> Draw:
    """Images (64, or one row of 8 per class), or walks (8, one a row) of `interpolate`
    steps. A conditional G without `label` cycles through its classes, a class a row.
    The count is bounded (`bound`) before any latent is drawn."""
    classes = getattr(generator, "num_classes", 0)
    if interpolate is not None:
        walks = num or (8 if label is not None or not classes else class_grid_rows(classes))
        bound(walks * interpolate, shape)
        z = walk_latents(walks, interpolate, generator.latent_shape, seed, truncation)
        draw = Draw(walks * interpolate, interpolate, z.flatten(0, 1))
        if classes:
            rows = torch.full((walks,), label) if label is not None else torch.arange(walks)
            draw.labels = (rows % classes).repeat_interleave(interpolate)
        return draw
    if not classes or label is not None:
        bound(num or 64, shape)
        labels = torch.full((num or 64,), label) if label is not None else None
        return Draw(num or 64, nrow, labels=labels)
    rows = class_grid_rows(classes)
    columns = nrow or (math.ceil(num / rows) if num else 8)
    count = num or rows * columns  # --nrow alone sets a row per class of that many
    bound(count, shape)
    return Draw(count, columns, labels=class_row_labels(count, columns, classes))


def sample(
    checkpoint: Path,
    num: int | None = None,
    out: Path | None = None,
    nrow: int | None = None,
    seed: int = 0,
    fmt: str = "grid",
    device: str = "auto",
    workdir: Path = Path("."),
    truncation: float | None = None,
    interpolate: int | None = None,
    label: str | None = None,
) -> Path:
    """Write images from a checkpoint's G (see `_draw` for how many, and which classes)."""
    _check(fmt, truncation, interpolate)
    torch_device = resolve_device(device)
    generator, state = generator_from_checkpoint(checkpoint, torch_device)
    classes = list(state["model"].get("classes") or [])
    index = resolve_label(label, classes, Path(checkpoint)) if label is not None else None
    shape = tuple(state["model"]["image_shape"])
    draw = _draw(generator, num, nrow, seed, truncation, interpolate, index, shape)
    walk, name = interpolate is not None, classes[index] if index is not None else None
    out = (  # before anything is drawn: a linked run folder is refused at once
        _with_suffix(out, fmt)
        if out
        else default_out(Path(checkpoint), state, fmt, workdir, walk, name)
    )
    options = {"batch_size": _CHUNK, "device": torch_device, "truncation": truncation}
    if draw.latents is None:
        fakes = generate_all(generator, draw.num, seed=seed, labels=draw.labels, **options)
    else:
        fakes = generate_all(generator, latents=draw.latents, labels=draw.labels, **options)
    release_cached_memory(torch_device)
    per_class = classes if draw.labels is not None and index is None else None
    try:
        _write(fakes, out, fmt, draw.nrow, interpolate, draw.labels, per_class)
    except OSError as exc:
        raise GanError(
            f"Could not write {out} ({exc.strerror or exc}); choose another --out."
        ) from None
    logger.info("Wrote {} image(s) from step {} to {}", draw.num, state["step"], out)
    return out


def _write(
    fakes: torch.Tensor,
    out: Path,
    fmt: str,
    nrow: int | None,
    steps: int | None,
    labels: torch.Tensor | None = None,
    per_class: list[str] | None = None,
) -> None:
    """Write in `fmt` (`gan.outputs.sample_files`); with `per_class` (several classes in
    one call) PNGs go into one subfolder per class (the layout the folder dataset reads)
    and npy gets a labels file."""
    if fmt == "grid":
        files.write_grid(fakes, out, nrow)
    elif fmt == "png":
        files.write_pngs(fakes, out, labels, per_class)
    elif fmt == "gif":
        files.write_gif(fakes, out, steps or 1)
    else:
        files.write_npy(fakes, out, labels, per_class)
