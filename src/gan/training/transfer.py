"""--init-from: a new run that starts from another run's weights (StyleGAN2-ADA's transfer).

The run is new (its own name, step 0, fresh optimizers, its own schedule); only G, D and
G's moving average come from the checkpoint, which is loaded as any other is
(`gan.checkpoint.load_checkpoint`: weights_only, digest, bounds), and recorded in run.json
with the SHA-256 of its file. Its model options come with it (`model_options`); what
cannot carry over is refused in one sentence (another image size or channel count) or,
for a conditional model's class embeddings when the classes are counted differently,
re-initialised with one line saying which (`carry`).

The moving average starts from the checkpoint's, with its warm-up anew (the first update
copies G, as a new run's does): StyleGAN2-ADA's ramp-up does the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from loguru import logger
from torch import nn

from gan.checkpoint import load_checkpoint
from gan.config import FIELDS, Config
from gan.config.values import shown
from gan.errors import GanError
from gan.training.rules import Changes, plain

# The model options the weights' shapes depend on: given otherwise, they are refused.
SHAPED = (
    "model.name",
    "model.latent_dim",
    "model.spectral_norm",
    "model.conditional",
    "model.grow",
    "model.grow_from",
)
# Tensors a different number of classes reshapes: conditional G's class embedding and
# class BatchNorms (gain, shift), the projection D's embedding.
_CLASS_PARTS = ("embed.weight", ".gain.weight", ".shift.weight")
_KEEP = "class_weights"  # the new data's class frequencies, not the source's


@dataclass(frozen=True)
class Source:
    """The checkpoint a new run starts from."""

    path: Path
    state: dict[str, Any]
    sha256: str  # of the file, as sha256sum prints it

    def record(self) -> dict[str, Any]:
        """run.json's "init_from"."""
        return {
            "path": str(self.path.resolve()),
            "sha256": self.sha256,
            "run": self.state.get("run_name"),
            "step": int(self.state["step"]),
        }


def load_source(text: str) -> Source:
    """The checkpoint --init-from names; what is wrong with it is one sentence."""
    path = Path(text).expanduser()
    try:
        state = load_checkpoint(path)
    except GanError as exc:
        raise GanError(f"--init-from: {exc}") from None
    with open(path, "rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    return Source(path, state, sha256)


def model_options(source: Source, given: Config, chosen: Any) -> Changes:
    """The source's model options, for those the user left unset; one the weights' shapes
    depend on, given otherwise, is one sentence."""
    saved = Config.from_dict(source.state["config"])
    for key in SHAPED:
        f = FIELDS[key]
        old, new = plain(saved.get(key)), plain(given.get(key))
        if key in chosen and new != old:
            raise GanError(
                f"{f.flag} {shown(new)} differs from the {shown(old)} of --init-from "
                f"{source.path}, whose weights need it; drop {f.flag}, or start from a "
                f"checkpoint of a model with {f.flag} {shown(new)}."
            )
    recorded = given.train.init_sha256
    if recorded is not None and recorded != source.sha256:
        raise GanError(
            f"--init-from {source.path} is not the checkpoint this run started from (its "
            f"SHA-256 begins {source.sha256[:12]}, the run's --init-sha256 {recorded[:12]}): "
            "give --init-from the file it started from, or, to start a new run from this one, "
            "leave out --init-sha256 (a config file's init_sha256 line)."
        )
    keys = [f.key for f in FIELDS.values() if f.section == "model" and f.key not in chosen]
    return {key: saved.get(key) for key in keys} | {"train.init_sha256": source.sha256}


def check_fits(source: Source, image_shape: tuple[int, ...], classes: tuple) -> None:
    """The source's weights can take this data (checked once the data is loaded, before
    the run's folders are made): the same channels and size, labels or none."""
    model, path = source.state["model"], source.path
    old_shape = tuple(int(s) for s in model.get("image_shape") or ())
    if old_shape[:1] != tuple(image_shape[:1]):
        raise GanError(
            f"--init-from {path} was trained on {old_shape[0]}-channel images and this data "
            f"has {image_shape[0]}; its first layers cannot take them: train on "
            f"{old_shape[0]}-channel images, or start from scratch (drop --init-from)."
        )
    if old_shape[1:] != tuple(image_shape[1:]):
        size = "x".join(map(str, old_shape[1:]))
        raise GanError(
            f"--init-from {path} makes {size} images and this run "
            f"{'x'.join(map(str, image_shape[1:]))}, and its layers are sized for {size}; "
            f"give --image-size {size}."
        )
    old_classes = tuple(model.get("classes") or ())
    if bool(old_classes) != bool(classes):
        raise GanError(
            f"--init-from {path} was trained {'with' if old_classes else 'without'} labels "
            f"and this run {'trains with them' if classes else 'has none'}; give data "
            f"{'with' if old_classes else 'without'} labels, or drop --init-from."
        )


def carry(runtime: Any, source: Source, classes: tuple) -> None:
    """Copy the source's G, D and G's moving average into a new run's `runtime`."""
    old_classes, path = tuple(source.state["model"].get("classes") or ()), source.path
    weights = source.state["runtime"]
    ema = runtime.G_ema.module if runtime.G_ema is not None else None
    pairs = [("G", runtime.G, weights["generator"]), ("D", runtime.D, weights["discriminator"])]
    if ema is not None:
        pairs.append(("G's moving average", ema, weights.get("generator_ema") or pairs[0][2]))
    renewed = [_load(name, module, theirs, path) for name, module, theirs in pairs]
    parts = ["G, D" + (" and G's moving average" if ema is not None else "")]
    fresh = sorted({key for keys in renewed for key in keys})
    if fresh:
        parts.append(
            f"re-initialised, for {len(classes)} classes rather than {len(old_classes)}: "
            + ", ".join(fresh)
        )
    elif old_classes != tuple(classes):
        pairs_text = ", ".join(f"{a}->{b}" for a, b in zip(old_classes, classes, strict=True))
        parts.append(f"class embeddings carried over by index ({pairs_text})")
    step = int(source.state["step"])
    logger.info("Initialised from {} (step {}): {}.", path, step, "; ".join(parts))


def _load(name: str, module: nn.Module, theirs: Any, path: Path) -> list[str]:
    """Load `theirs` into `module`, its class embeddings kept where their shapes differ
    (their keys returned); any other difference is one sentence."""
    own = module.state_dict()
    if not isinstance(theirs, dict) or set(theirs) != set(own):
        missing = sorted(set(own) - set(theirs or {}))[:1] or sorted(set(theirs or {}) - set(own))
        raise GanError(
            f"--init-from {path}: its {name} does not match the model its options build "
            f"({shown(missing[0] if missing else 'no weights')} differs); use a checkpoint "
            "written by gan train."
        )
    merged, fresh = {}, []
    for key, mine in own.items():
        value = theirs[key]
        if not isinstance(value, torch.Tensor) or key.endswith(_KEEP):
            merged[key] = mine
        elif tuple(value.shape) == tuple(mine.shape):
            merged[key] = value
        elif key.endswith(_CLASS_PARTS):
            merged[key], fresh = mine, [*fresh, f"{name}'s {key}"]
        else:
            raise GanError(
                f"--init-from {path}: {name}'s {key} is {tuple(value.shape)} where this run's "
                f"is {tuple(mine.shape)}; use a checkpoint of the same model and data shape."
            )
    module.load_state_dict(merged)
    return fresh
