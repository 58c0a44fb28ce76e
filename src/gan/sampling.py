"""`gan sample`: checkpoint -> generator -> a grid, separate PNGs, or an .npy array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from loguru import logger

from gan import images
from gan.checkpoint import load_checkpoint
from gan.devices import release_cached_memory, resolve_device
from gan.errors import GanError
from gan.generate import generate_all, walk_latents
from gan.models import build_models

FORMATS = ("grid", "png", "npy", "gif")
_CHUNK = 256  # images generated at once, to bound memory for large --num


def load_generator(path: Path | str, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """Rebuild G from the model config stored in a checkpoint; no model flags needed."""
    state = load_checkpoint(path)
    model = state["model"]
    generator, _ = build_models(model["name"], tuple(model["image_shape"]), model["latent_dim"])
    try:
        # Prefer the moving average of G's weights, as training grids do.
        generator.load_state_dict(state.get("generator_ema") or state["generator"])
    except RuntimeError:
        raise GanError(
            f"{path} does not match model {model['name']!r} as this gan builds it; "
            "it may come from another version of the model."
        ) from None
    return generator.to(device).eval(), state


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


def default_out(checkpoint: Path, state: dict, fmt: str, workdir: Path, walk: bool) -> Path:
    run = state.get("run_name") or checkpoint.stem
    stem = f"{'walk' if walk else 'sample'}-{state['step']:07d}"
    suffix = {"grid": ".png", "png": "", "npy": ".npy", "gif": ".gif"}[fmt]
    return workdir / "assets" / run / f"{stem}{suffix}"


def _check(fmt: str, truncation: float | None, interpolate: int | None) -> None:
    if fmt not in FORMATS:
        raise GanError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
    if truncation is not None and not truncation > 0:
        raise GanError(f"--truncation {truncation} must be above 0 (1 or 2 are typical).")
    if interpolate is not None and interpolate < 2:
        raise GanError(f"--interpolate {interpolate} must be at least 2 steps.")
    if fmt == "gif" and interpolate is None:
        raise GanError("--format gif animates a latent walk; give --interpolate STEPS too.")


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
) -> Path:
    """Write `num` images (64 by default), or with `interpolate` that many walks (8 by
    default) of `interpolate` steps, one walk a row, or one frame a step in a GIF."""
    _check(fmt, truncation, interpolate)
    torch_device = resolve_device(device)
    generator, state = load_generator(checkpoint, torch_device)
    options = {"batch_size": _CHUNK, "device": torch_device, "truncation": truncation}
    if interpolate is None:
        num = num or 64
        fakes = generate_all(generator, num, seed=seed, **options)
    else:
        num, nrow = (num or 8) * interpolate, interpolate
        z = walk_latents(num // interpolate, interpolate, generator.latent_shape, seed, truncation)
        fakes = generate_all(generator, latents=z.flatten(0, 1), **options)
    release_cached_memory(torch_device)
    walk = interpolate is not None
    out = (
        _with_suffix(out, fmt) if out else default_out(Path(checkpoint), state, fmt, workdir, walk)
    )
    try:
        _write(fakes, out, fmt, nrow, interpolate)
    except OSError as exc:
        raise GanError(
            f"Could not write {out} ({exc.strerror or exc}); choose another --out."
        ) from None
    logger.info("Wrote {} image(s) from step {} to {}", num, state["step"], out)
    return out


def _write(fakes: torch.Tensor, out: Path, fmt: str, nrow: int | None, steps: int | None) -> None:
    if fmt == "grid":
        images.save_grid(fakes, out, nrow)
    elif fmt == "png":
        from torchvision.utils import save_image

        out.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images.to_unit(fakes)):
            save_image(image, out / f"{i:05d}.png")
    elif fmt == "gif":
        walks = fakes.view(-1, steps, *fakes.shape[1:])  # walk x step x C x H x W
        frames = [images.grid(walks[:, t]) for t in range(steps)]
        images.save_gif(frames, out)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, images.to_unit(fakes).numpy())
