"""How a new run's unset options get their values, beyond the declared defaults: the
dataset's own (chosen by measurement, `catalog`), and those that depend on the data once
loaded (augmentation for small data; no --conditional for data without labels)."""

from __future__ import annotations

from loguru import logger

from gan.config import FIELDS, Config
from gan.data import DATASETS, ImageData


def unset_options(config: Config) -> frozenset[str]:
    """For library callers: the options still at their declared defaults count as unset."""
    return frozenset(key for key, f in FIELDS.items() if config.get(key) == f.default)


def apply_dataset_defaults(config: Config, chosen: frozenset[str]) -> Config:
    """The dataset's own defaults (catalog `defaults`) for the options the user left unset."""
    spec = DATASETS.get(config.data.name)
    budget = {"train.epochs", "train.max_steps"}
    if budget & chosen:  # the user's budget replaces the dataset's, whichever form it takes
        chosen = chosen | budget
    return config.replace({key: value for key, value in spec.defaults if key not in chosen})


SMALL_DATA = 2000  # fewer images than this: augmentation by default (ADA's regime)
SMALL_DATA_AUGMENT = "translation,cutout"


def small_data_defaults(config: Config, data: ImageData, chosen: frozenset[str]) -> Config:
    """Adaptive augmentation for a new run on few images, unless the user chose otherwise:
    p starts at 0 and rises only when D starts to tell the reals apart by heart."""
    if len(data.images) >= SMALL_DATA or {"optim.augment", "optim.augment_p"} & chosen:
        return config
    if config.optim.augment != "none":  # the dataset's own defaults already augment
        return config
    logger.info(
        "{} images (< {}): adaptive augmentation {} (--augment none to turn it off).",
        len(data.images),
        SMALL_DATA,
        SMALL_DATA_AUGMENT,
    )
    return config.replace({"optim.augment": SMALL_DATA_AUGMENT, "optim.augment_p": "auto"})


def label_defaults(config: Config, data: ImageData, chosen: frozenset[str]) -> Config:
    """A dataset whose default is --conditional (mnist) trains without labels when this
    copy of it has none, unless the user asked for --conditional."""
    if not config.model.conditional or "model.conditional" in chosen or data.labels is not None:
        return config
    logger.info("{} has no labels: training without --conditional.", data.source)
    return config.replace({"model.conditional": False})
