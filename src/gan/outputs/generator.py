"""A checkpoint's generator, rebuilt from what the checkpoint says of its model, and
`Generator`, the Python API's handle on it (`gan.load_generator`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from gan.checkpoint import generator_weights, load_checkpoint
from gan.devices import resolve_device
from gan.errors import GanError
from gan.models import build_models, generator_shapes, parameter_bytes
from gan.models.generate import generate_all

MAX_IMAGES = 100_000  # as --num allows
MAX_VALUES = 2**28  # pixel values made at once: 1 GiB as float32
MIN_TRUNCATION = 0.04  # BigGAN's smallest; below it almost every draw is rejected


def generator_from_checkpoint(
    path: Path | str, device: torch.device
) -> tuple[torch.nn.Module, dict]:
    """Rebuild G from the model config stored in a checkpoint; no model flags needed.
    The weights must match the model's shapes before the model is given memory."""
    state = load_checkpoint(path)
    model = state["model"]
    shape, classes = tuple(model["image_shape"]), len(model.get("classes") or [])
    grow = model.get("grow", 0)  # coarse-to-fine levels (checked by load_checkpoint)
    weights = generator_weights(state)  # its moving average, as training grids show
    mismatch = GanError(
        f"{path} does not match model {model['name']!r} as this gan builds it; "
        "it may come from another version of the model."
    )
    try:
        expected = generator_shapes(model["name"], shape, model["latent_dim"], classes, grow)
    except GanError:
        raise
    except Exception:  # a model that cannot be built at this size
        raise mismatch from None
    stored = {k: tuple(v.shape) for k, v in weights.items() if isinstance(v, torch.Tensor)}
    if stored != expected or len(stored) != len(weights):
        raise mismatch
    needs = parameter_bytes(model["name"], shape, model["latent_dim"], classes, grow)
    check_memory(path, model["name"], needs)
    generator, _ = build_models(model["name"], shape, model["latent_dim"], classes, grow)
    try:
        generator.load_state_dict(weights)
    except RuntimeError:
        raise mismatch from None
    return generator.to(device).eval(), state


def check_memory(path: Path | str, name: str, sizes: tuple[int, int]) -> None:
    """Refuse, before they are given memory, a G and D that would take more than half of
    the machine's memory (building G builds D too; the checkpoint's tensors and the images
    drawn need the rest)."""
    from gan.data.limits import physical_memory, size_text

    total, need = physical_memory(), sum(sizes)
    if total is not None and need > total // 2:
        raise GanError(
            f"{path} holds model {name!r}, whose G and D need {size_text(need)} of memory, "
            f"more than half of this machine's {size_text(total)}; load it on a machine with "
            "more memory."
        )


def resolve_label(text: str, classes: list[str], checkpoint: Path) -> int:
    """The index of class `text` (exact, then ignoring case, then by numeric value)."""
    if not classes:
        raise GanError(
            f"--label needs a checkpoint trained with --conditional; {checkpoint} was "
            "trained without labels."
        )
    for same in (str.__eq__, lambda a, b: a.lower() == b.lower(), _same_number):
        found = [i for i, name in enumerate(classes) if same(text.strip(), name)]
        if found:
            return found[0]
    raise GanError(
        f"--label {text!r} is not a class of {checkpoint}; it knows {', '.join(classes)}."
    )


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def bound(count: int, image_shape: tuple[int, ...]) -> None:
    """Refuse, before anything is drawn, more images than gan sample makes at once."""
    size = math.prod(image_shape)
    most = min(MAX_IMAGES, MAX_VALUES // size)
    if count > most:
        raise GanError(
            f"The options ask for {count:,} images of {'x'.join(map(str, image_shape[1:]))}, "
            f"more than gan sample makes at once ({most:,}); ask for fewer with --num, --nrow "
            "or --interpolate, and run it again with another --seed for more."
        )


class Generator:
    """A trained generator, ready to draw images: `gan.load_generator(path).sample(16)`.

    `image_shape` is channels x height x width; `classes` the class names of a
    conditional model (empty otherwise); `step` and `run` say where it comes from.
    """

    def __init__(self, path: Path | str, device: str = "auto") -> None:
        self.device = resolve_device(device)
        self.module, state = generator_from_checkpoint(path, self.device)
        model = state["model"]
        self.image_shape = tuple(model["image_shape"])
        self.classes: list[str] = list(model.get("classes") or [])
        self.latent_shape = tuple(self.module.latent_shape)
        self.step, self.run = int(state["step"]), state.get("run_name")

    def sample(
        self,
        n: int,
        label: str | int | None = None,
        truncation: float | None = None,
        seed: int | None = None,
        tensor: bool = False,
    ) -> Any:
        """`n` images: uint8 arrays N x H x W x C (or, with `tensor`, float tensors
        N x C x H x W in [0, 1]). `label`: a class name or index of a conditional model;
        `truncation`: BigGAN's truncation of the latents; `seed`: the same images again
        (default: a random draw)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise GanError(f"n={n!r} must be a whole number of images from 1.")
        bound(n, self.image_shape)
        if truncation is not None and not truncation >= MIN_TRUNCATION:
            raise GanError(f"truncation={truncation} must be at least {MIN_TRUNCATION}.")
        labels = None
        if label is not None:
            where = Path(str(self.run))
            index = (
                label if isinstance(label, int) else resolve_label(str(label), self.classes, where)
            )
            if not 0 <= index < max(len(self.classes), 1) or not self.classes:
                raise GanError(f"label={label!r} is not a class of this generator.")
            labels = torch.full((n,), index)
        seed = int(torch.randint(0, 2**31, ())) if seed is None else seed
        options = {"device": self.device, "truncation": truncation, "batch_size": 256}
        images = generate_all(self.module, n, seed=seed, labels=labels, **options)
        unit = images.add(1).div(2).clamp(0, 1)
        if tensor:
            return unit
        return (unit * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.image_shape))
        classes = f", {len(self.classes)} classes" if self.classes else ""
        return f"Generator({self.run!r}, step {self.step}, {shape}{classes})"
