"""The plan's steps (`gan.training.plan`): each reads the config as the steps before it
left it, and returns the options it sets.

Before the data: the user's options over a resumed checkpoint's config (`resumed_options`),
or the dataset's own defaults (`dataset_defaults`), then the dataset's model, length and
image size (`dataset_resolution`). Once the data is loaded, for a new run: augmentation for
small data (`small_data`), no --conditional for data without labels (`labels`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gan.config import FIELDS, Config
from gan.config.catalog import DATASETS, MODELS
from gan.config.given import ARGUMENT, FILE, LENGTH
from gan.errors import GanError
from gan.training.checks import check_before_data

Changes = dict[str, Any]

# The dataset's own length, in whichever form, goes when the user gives one: mri's is its
# epochs stopped by --time-limit.
DATASET_LENGTH = LENGTH | {"train.time_limit"}
SMALL_DATA_IMAGES = 2000  # fewer images than this: augmentation by default (ADA's regime)
SMALL_DATA_AUGMENT = "translation,cutout"


def resumed_options(
    saved: Config, given: Config, chosen: Mapping[str, str], step: int = 0
) -> Changes:
    """The options the user chose, over the checkpoint's config (resumed at `step`).
    Options that define the run (`fixed` in their declaration) must match it; the rest
    (length, intervals, learning rates, device, data location) may change, and a length
    given in any form replaces the checkpoint's. A resumed run goes on unless told where
    to stop: a --stop-at of a config file at or before `step` (where that run stopped
    before) is not one."""
    for key in sorted(chosen):
        f = FIELDS[key]
        old, new = plain(saved.get(key)), plain(given.get(key))
        if f.opt.fixed and new != old:
            raise GanError(
                f"{f.flag} {_show(f, new)} differs from the checkpoint's {_show(f, old)}; a "
                f"resumed run must keep it (drop {f.flag}, or start a new run with another "
                "--run-name)."
            )
    changes = {key: given.get(key) for key in chosen}
    if any(given.get(key) != saved.get(key) for key in LENGTH & set(chosen)):
        changes |= {key: None for key in LENGTH - set(chosen)}
    stop_at = changes.get("train.stop_at")
    if stop_at is not None and chosen["train.stop_at"] == FILE and stop_at <= step:
        from loguru import logger  # here: gan --help does not load it

        logger.info(
            "The config file's stop_at {} is where the run stopped before; the resume trains "
            "on from step {} (give --stop-at to stop it earlier than its plan).",
            stop_at,
            step,
        )
        changes["train.stop_at"] = None
    changes.setdefault("train.stop_at", None)
    return changes


def dataset_defaults(view: Any, chosen: Mapping[str, str]) -> Changes:
    """The dataset's own defaults (catalog `defaults`) for the options the user left unset."""
    spec = DATASETS.get(view.get("data.name"))
    keep = set(chosen)
    if DATASET_LENGTH & keep:  # the user's length replaces the dataset's, whatever its form
        keep |= DATASET_LENGTH
    return {key: value for key, value in spec.defaults if key not in keep}


def dataset_resolution(view: Any) -> Changes:
    """The dataset's model, length (epochs, when no budget is given) and image size."""
    spec = DATASETS.get(view.get("data.name"))
    model = view.get("model.name") or spec.default_model
    MODELS.get(model)  # unknown names fail here with the list of valid ones
    epochs = view.get("train.epochs")
    unplanned = view.get("train.max_steps") is None and view.get("train.time_budget") is None
    if epochs is None and unplanned:
        epochs = spec.default_epochs
    size = view.get("data.image_size") or spec.default_image_size
    return {"model.name": model, "train.epochs": epochs, "data.image_size": size}


def small_data(view: Any, data: Any, chosen: Mapping[str, str]) -> Changes:
    """Adaptive augmentation for a new run on few images, unless the user chose otherwise:
    p starts at 0 and rises only when D starts to tell the reals apart by heart."""
    if len(data.images) >= SMALL_DATA_IMAGES or {"optim.augment", "optim.augment_p"} & set(chosen):
        return {}
    if view.get("optim.augment") != "none":  # the dataset's own defaults already augment
        return {}
    from loguru import logger  # here: gan --help does not load it

    logger.info(
        "{} images (< {}): adaptive augmentation {} (--augment none to turn it off).",
        len(data.images),
        SMALL_DATA_IMAGES,
        SMALL_DATA_AUGMENT,
    )
    return {"optim.augment": SMALL_DATA_AUGMENT, "optim.augment_p": "auto"}


def labels(view: Any, data: Any, chosen: Mapping[str, str]) -> Changes:
    """A dataset whose default is --conditional (mnist) trains without labels when this
    copy of it has none, unless the user asked for --conditional."""
    if not view.get("model.conditional") or "model.conditional" in chosen:
        return {}
    if data.labels is not None:
        return {}
    from loguru import logger  # here: gan --help does not load it

    logger.info("{} has no labels: training without --conditional.", data.source)
    return {"model.conditional": False}


# ---- the same steps, one at a time (for tests and library callers) ----------------------------


def apply_dataset_defaults(config: Config, chosen: frozenset[str]) -> Config:
    return config.replace(dataset_defaults(config, dict.fromkeys(chosen, ARGUMENT)))


def resolve(config: Config) -> Config:
    """The dataset's model, length and image size filled in, validated and checked."""
    config.validate()
    config = config.replace(dataset_resolution(config))
    check_before_data(config)
    return config


def _show(f: Any, value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, tuple) and f.opt.show is str:
        return "x".join(map(str, value))
    return f.opt.show(value)


def plain(value: Any) -> Any:
    """A value as a config holds it (lists, as read from JSON, are tuples)."""
    return tuple(value) if isinstance(value, list) else value
