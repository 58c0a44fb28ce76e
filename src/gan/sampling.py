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
from gan.generate import generate_all
from gan.models import build_models

FORMATS = ("grid", "png", "npy")
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
    if fmt == "npy":
        return out if out.suffix == ".npy" else out.with_name(out.name + ".npy")
    if fmt == "grid":
        if not out.suffix:
            return out.with_name(out.name + ".png")
        if out.suffix.lower() not in _GRID_SUFFIXES:
            raise GanError(
                f"--out {out} has an extension that cannot hold an image; use one of "
                f"{', '.join(_GRID_SUFFIXES)}."
            )
    return out


def default_out(checkpoint: Path, state: dict, fmt: str, workdir: Path) -> Path:
    run = state.get("run_name") or checkpoint.stem
    stem = f"sample-{state['step']:07d}"
    suffix = {"grid": ".png", "png": "", "npy": ".npy"}[fmt]
    return workdir / "assets" / run / f"{stem}{suffix}"


def sample(
    checkpoint: Path,
    num: int = 64,
    out: Path | None = None,
    nrow: int | None = None,
    seed: int = 0,
    fmt: str = "grid",
    device: str = "auto",
    workdir: Path = Path("."),
) -> Path:
    if fmt not in FORMATS:
        raise GanError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
    torch_device = resolve_device(device)
    generator, state = load_generator(checkpoint, torch_device)
    fakes = generate_all(generator, num, seed=seed, batch_size=_CHUNK, device=torch_device)
    release_cached_memory(torch_device)
    out = _with_suffix(out, fmt) if out else default_out(Path(checkpoint), state, fmt, workdir)
    try:
        if fmt == "grid":
            images.save_grid(fakes, out, nrow)
        elif fmt == "png":
            from torchvision.utils import save_image

            out.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images.to_unit(fakes)):
                save_image(image, out / f"{i:05d}.png")
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            np.save(out, images.to_unit(fakes).numpy())
    except OSError as exc:
        raise GanError(
            f"Could not write {out} ({exc.strerror or exc}); choose another --out."
        ) from None
    logger.info("Wrote {} image(s) from step {} to {}", num, state["step"], out)
    return out
