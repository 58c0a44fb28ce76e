"""The checks of a plan (`gan.training.plan`): each says in one sentence what does not fit.
`check_before_data` makes those that need no data (a long download saved), `check_fits`
those of the model at an image size, once per model and size."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gan.config import Config, TrainConfig
from gan.config.catalog import (
    D_BLOCKS,
    DATASETS,
    MODELS,
    classes_without_labels,
    freeze_d_beyond,
)
from gan.config.values import MAX_CLASS_NAME, MAX_CLASSES, MAX_SIDE, shown
from gan.errors import GanError

BUDGET_MIN_S = 2.0  # the warm-up: its first steps, then at least half a second timed
# Copies of G's and D's weights a run holds: the weights, their gradients, Adam's two
# moments, and (for G) the moving average.
TRAINING_COPIES = 5
ACTIVATION_COPIES = 2  # a batch's feature maps, kept for the backward pass, and their gradients


def check_budget(train: TrainConfig) -> None:
    """A --time-budget plans the run's length itself, after a warm-up it must leave room for."""
    if train.time_budget is None:
        if train.planned_steps is not None:
            raise GanError(
                "--planned-steps is the plan of a --time-budget; give the budget with it, or "
                "use --max-steps for a run of that many steps."
            )
        return
    lengths = (("--epochs", train.epochs), ("--max-steps", train.max_steps))
    given = [flag for flag, value in lengths if value is not None]
    if given:
        raise GanError(
            f"--time-budget plans the run's length itself, so it cannot be combined with "
            f"{' or '.join(given)}; give one of them (--stop-at ends a run early without "
            "changing its plan)."
        )
    if train.time_budget < BUDGET_MIN_S and train.planned_steps is None:
        raise GanError(
            f"--time-budget {train.time_budget:g}s is too short for the warm-up that measures "
            f"the step rate; give at least {BUDGET_MIN_S:g}s, or plan by --max-steps."
        )


def check_growth(config: Config) -> None:
    """--grow: a model that can grow, from 1/2, 1/4 or 1/8 of the size."""
    m = config.model
    if not m.grow:
        return
    from gan.models import can_grow
    from gan.models.growth import GROW_FROM

    if m.grow_from not in GROW_FROM:
        raise GanError(
            f"--grow-from {m.grow_from} is not one of {', '.join(map(str, GROW_FROM))}: the "
            "stages halve the size, so the first one is 1/2, 1/4 or 1/8 of it."
        )
    if config.train.time_budget is not None:
        raise GanError(
            "--grow cannot be planned by --time-budget yet (its warm-up times one stage, and "
            "the stages differ in cost); give --max-steps or --epochs, with --time-limit "
            "to stop it at a time."
        )
    if config.train.compile:
        raise GanError(
            "--grow cannot be compiled (--compile): every stage and fade would compile G and "
            "D again; leave --compile out."
        )
    if not can_grow(m.name):
        growing = [name for name in MODELS if can_grow(name)]
        raise GanError(
            f"Model {m.name!r} cannot train coarse to fine; use --model {' or '.join(growing)} "
            "with --grow, or leave --grow out."
        )


def check_penalties(config: Config, image_shape: tuple[int, ...]) -> None:
    """R1 and WGAN-GP penalise D's gradient image by image; BatchNorm in D couples them."""
    from gan.models import has_batch_statistics

    o, m = config.optim, config.model
    if o.r1_gamma == 0 and o.loss != "wgan-gp":
        return
    if has_batch_statistics(m.name, image_shape, m.latent_dim):
        free = [n for n in MODELS if not has_batch_statistics(n, (1, 32, 32), m.latent_dim)]
        raise GanError(
            f"Model {m.name!r} has BatchNorm in its discriminator, which mixes the images "
            f"that --r1-gamma and --loss wgan-gp penalise one by one; choose --model "
            f"{' or '.join(free)}, or leave the penalty out."
        )


def check_labels(config: Config, data: Any) -> None:
    """--conditional needs a label for every image, and more than one class to be useful;
    its classes are stored in every checkpoint, within the limits a checkpoint is loaded
    with (`gan.config.values`)."""
    if not config.model.conditional:
        return
    if data.labels is None:
        where = DATASETS.get(config.data.name).labels or "labels"
        raise GanError(
            f"--conditional needs {where}, and {data.source} has none; add them or leave "
            "--conditional out."
        )
    if len(data.classes) > MAX_CLASSES:
        raise GanError(
            f"--conditional takes at most {MAX_CLASSES:,} classes and {data.source} has "
            f"{len(data.classes):,}; group them into fewer, or leave --conditional out."
        )
    long = next((c for c in data.classes if not 0 < len(str(c)) <= MAX_CLASS_NAME), None)
    if long is not None:
        raise GanError(
            f"The class name {shown(str(long))} ({len(str(long))} characters) is longer than "
            f"the {MAX_CLASS_NAME} characters a class name may have; rename it, or leave "
            "--conditional out."
        )
    if len(data.classes) < 2:
        from loguru import logger  # here: gan --help does not load it

        logger.warning(
            "The data has one class ({}): --conditional will learn nothing from it.",
            ", ".join(data.classes),
        )


def check_limits(
    config: Config, image_shape: tuple[int, ...], images: int = 0, classes: int = 0
) -> None:
    """The image size within the side a checkpoint may have, and the run within the
    machine's memory (`_memory_needs`), each refused in one sentence before anything is
    allocated."""
    from gan.data.limits import physical_memory, size_text

    channels, height, width = image_shape
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise GanError(
            f"The images are {height}x{width}, more than the {MAX_SIDE} pixels a side a run "
            "may have; give a smaller --image-size."
        )
    total = physical_memory()
    if total is None:
        return
    needs = _memory_needs(config, image_shape, images, classes)
    if sum(needs.values()) <= total:
        return
    batch = config.optim.batch_size
    parts = {
        "model": "for G and D with their gradients, optimizer state and moving average",
        "data": f"for the {images:,} images as float",
        "activations": f"for the feature maps of a batch of {batch}",
    }
    spent = ", ".join(f"{size_text(n)} {parts[k]}" for k, n in needs.items() if n)
    raise GanError(
        f"Model {config.model.name!r} at {'x'.join(map(str, image_shape))} needs about "
        f"{size_text(sum(needs.values()))} of memory to train ({spent}), more than this "
        f"machine's {size_text(total)}; {_FIXES[max(needs, key=needs.__getitem__)]}."
    )


_FIXES = {
    "model": "give a smaller --image-size or another --model",
    "data": "give a smaller --image-size, or use fewer images",
    "activations": "give a smaller --batch-size (with more --accumulation-steps), a smaller "
    "--image-size or another --model",
}


def _memory_needs(
    config: Config, image_shape: tuple[int, ...], images: int, classes: int
) -> dict[str, int]:
    """Bytes a run holds in the machine's memory: G and D (counted on the meta device) with
    their gradients, Adam's moments and G's moving average; the images as float; and, for a
    run on the CPU (or MPS's unified memory), the feature maps of a batch and their
    gradients (one image through G and D, on the meta device when it is large)."""
    from gan.models import activation_bytes, parameter_bytes

    m = config.model
    needs = {
        "model": TRAINING_COPIES * sum(parameter_bytes(m.name, image_shape, m.latent_dim, classes)),
        "data": images * math.prod(image_shape) * 4,
        "activations": 0,
    }
    if _in_host_memory(config.train.device):
        per_image = activation_bytes(m.name, image_shape, m.latent_dim)
        needs["activations"] = ACTIVATION_COPIES * config.optim.batch_size * per_image
    return needs


def _in_host_memory(device: str) -> bool:
    """Whether --device trains in the machine's memory (the CPU, or MPS's unified memory)."""
    if device == "auto":
        import torch

        return not torch.cuda.is_available()
    return not device.startswith("cuda")


def check_same_data(data: Any, state: dict[str, Any], path: Path | None) -> None:
    """A resumed run trains on the images it started with."""
    saved, now = state.get("dataset", {}), data.summary()
    for key, what in (("num_images", "num images"), ("image_shape", "image shape")):
        if saved.get(key) is not None and saved[key] != now[key]:
            raise GanError(
                f"The data has {what} {now[key]} but {path} was trained on {saved[key]}; "
                "resume with the same data or start a new run."
            )
    classes = state.get("model", {}).get("classes")
    if classes is not None and list(data.classes) != list(classes):
        raise GanError(
            f"The data has the classes {', '.join(data.classes)} but {path} was trained on "
            f"{', '.join(classes)}; resume with the same data or start a new run."
        )


def check_freeze_count(config: Config) -> None:
    """--freeze-d leaves D's output layer to train: the blocks each model's D has, from the
    catalog (no model is built, so a dry run checks it too)."""
    name, count = config.model.name, config.train.freeze_d
    blocks = D_BLOCKS[name][0] if name in D_BLOCKS else None
    if blocks is not None and count >= blocks:
        raise GanError(freeze_d_beyond(name, count, blocks))


def check_options(config: Config) -> None:
    """What the options say alone, without torch: a dry run makes these checks too."""
    check_budget(config.train)
    check_freeze_count(config)
    spec = DATASETS.get(config.data.name)
    if config.model.conditional and spec.labels is None:
        raise GanError(
            f"Dataset {config.data.name!r} has no labels, so --conditional cannot be used; "
            "leave it out, or use a dataset with labels (mnist, bps, or a folder with one "
            "subfolder per class)."
        )
    if config.data.classes and spec.labels is None:
        raise GanError(classes_without_labels(config.data.name))


def check_before_data(config: Config) -> tuple[Any, ...] | None:
    """What can be checked before any data is loaded (a long download saved)."""
    check_options(config)
    check_growth(config)
    spec = DATASETS.get(config.data.name)
    if config.data.image_size is None:
        return None
    channels = spec.channels or 1  # the channel count does not change which sizes fit
    return check_fits(config, (channels, *config.data.image_size), None)


def check_fits(config: Config, image_shape: tuple[int, ...], done: tuple | None) -> tuple:
    """The model makes this size, and the penalties suit it; once per model and size."""
    from gan.models import check_model_fits

    m, o = config.model, config.optim
    key = (m.name, tuple(image_shape[1:]), m.latent_dim, o.loss, o.r1_gamma)
    if key != done:
        check_limits(config, image_shape)  # before check_model_fits gives the model memory
        check_model_fits(m.name, image_shape, m.latent_dim)
        check_penalties(config, image_shape)
        if config.train.freeze_d:
            check_freeze_d(config, image_shape)
    return key


def check_freeze_d(config: Config, image_shape: tuple[int, ...]) -> None:
    """--freeze-d leaves D's output layer to train (its blocks counted on the meta device)."""
    from gan.models import _on_meta
    from gan.models.freeze import check_freeze

    m = config.model
    _, discriminator = _on_meta(m.name, tuple(image_shape), m.latent_dim, 0, 0)
    check_freeze(m.name, discriminator, config.train.freeze_d)
