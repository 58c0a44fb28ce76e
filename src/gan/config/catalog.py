"""Every dataset and model by name, with its summary and defaults: importable without torch.

The code behind an entry is named by its import path and imported only when the entry is
used, so `gan --help` can list the names and summaries without loading torch. To add a
model or a dataset, write its module and add one line here.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

from gan.registry import Registry


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class ModelEntry:
    summary: str
    target: str  # "module:function" with build(image_shape, latent_dim) -> (G, D)

    def builder(self) -> Any:
        """The build function (its module is imported on first use)."""
        return _load(self.target)


@dataclass(frozen=True)
class DatasetEntry:
    summary: str
    target: str  # "module:function" with load(data_config, image_size or None) -> ImageData
    default_model: str
    default_epochs: int
    default_image_size: tuple[int, int] | None = None  # None: the images' own size
    channels: int | None = 1  # None: decided by the data
    labels: str | None = None  # where --conditional's classes come from; None: no labels
    # Options ("section.field", value) this dataset trains with unless the user sets them:
    # chosen by measurement (docs/training.md, benchmarks/*_fid_table.py).
    defaults: tuple[tuple[str, Any], ...] = ()
    # G's and D's parameters with all of the above (and the labels' classes): what
    # `gan train --dry-run` shows without loading torch (tests/test_models.py counts them).
    parameters: tuple[int, int] | None = None

    def loader(self) -> Any:
        """The load function (its module is imported on first use)."""
        return _load(self.target)


MODELS: Registry[ModelEntry] = Registry("model")
DATASETS: Registry[DatasetEntry] = Registry("dataset")


def _model(name: str, summary: str, target: str) -> None:
    MODELS.register(name)(ModelEntry(summary, f"gan.models.{target}"))


def _dataset(name: str, summary: str, target: str, *, model: str, epochs: int, **more: Any) -> None:
    entry = DatasetEntry(summary, f"gan.data.{target}", default_model=model, default_epochs=epochs)
    DATASETS.register(name)(dataclasses.replace(entry, **more))


_model("mlp", "fully connected G and D (seed 000); any image size; default for mnist", "mlp:build")
_model(
    "dcgan",
    "seed 003's DCGAN, exact: spatial 7x7 latent for 28x28 (HxW multiple of 4)",
    "dcgan:build_dcgan",
)
_model(
    "dcgan-proj",
    "DCGAN with the latent projected to a 7x7 map; default for folder",
    "dcgan:build_projected",
)
_model(
    "fc-dcgan",
    "seed 001's linear + transposed-conv GAN (HxW multiple of 4, >= 16)",
    "fc_dcgan:build",
)
_model("mri", "seed 002's MRI GAN, 1x200x160 by default (HxW multiples of 8, >= 16)", "mri:build")
_model(
    "resgan",
    "small-data model: upsampling G with BatchNorm, residual D without BatchNorm "
    "(HxW multiples of 8, >= 16)",
    "resgan:build",
)
_model(
    "fastgan",
    "small-data model after FastGAN: skip-layer excitation in G, no full-resolution "
    "feature maps, residual D; twice the steps of mri per second (HxW multiples of 8, >= 32)",
    "fastgan:build",
)

# The blocks of each model's D that --freeze-d counts (gan.models.freeze), for its help
# (tests/test_transfer.py checks the counts against the models).
D_BLOCKS = {
    "mlp": (3, "3 linear layers, the last the output layer"),
    "dcgan": (4, "3 convolutions, then the output layer"),
    "dcgan-proj": (3, "2 convolutions, then the output layer"),
    "fc-dcgan": (4, "conv1, conv2, fc1, fc2"),
    "mri": (5, "4 convolutions, then the output layer"),
    "resgan": (5, "4 residual blocks, then the output layer"),
    "fastgan": (5, "a convolution, 3 residual blocks, then the output layer"),
}


def freeze_d_beyond(name: str, count: int, blocks: int) -> str:
    """The sentence for a --freeze-d that would freeze D's output layer too."""
    return (
        f"--freeze-d {count} is beyond model {name}'s discriminator, which has {blocks} "
        f"blocks, the last of them its output layer, which always trains; give "
        f"--freeze-d 0 to {blocks - 1}."
    )


def classes_without_labels(name: str) -> str:
    """The sentence for --classes on a dataset that has no labels (mri)."""
    return (
        f"Dataset {name!r} has no labels, so --classes cannot be used; leave it out, or use "
        "a dataset with labels (mnist, bps, folder)."
    )


def blocks_help() -> str:
    """The blocks of each model's D, for --freeze-d's help."""
    return "; ".join(f"{name} {count} ({what})" for name, (count, what) in D_BLOCKS.items())


_dataset(
    "mnist",
    "MNIST digits from IDX files in --data (default ./data)",
    "mnist:load_mnist",
    model="mlp",
    epochs=20,
    default_image_size=(28, 28),
    labels="the digit, from the IDX label file beside the images",
    parameters=(1_545_872, 536_065),  # 10 classes
    # benchmarks/mnist_fid_table.py: the best FID, precision and recall after 300 s.
    # The labels (a class-conditional G, a projection D) lift FID and precision; a slower G
    # (TTUR) keeps recall; the learning rates' linear decay over the last quarter sharpens.
    defaults=(
        ("model.conditional", True),
        ("optim.batch_size", 128),
        ("optim.lr_g", 2e-4),
        ("optim.lr_d", 8e-4),
        ("optim.lr_decay", 0.25),
        # Five minutes on any machine, the schedule fitted to its speed: 16,693 steps on
        # a 2-core AMD Zen 4 reached FID 2.12 (22,000 steps, a Zen 5's 299 s: FID 2.00).
        ("train.time_budget", 300.0),
        ("train.checkpoint_every", 2_000),  # 2,000 steps are 30-40 s on 2 cores
    ),
)
_dataset(
    "mri",
    "brain MRI slices (PNG/JPG/TIFF), NIfTI volumes and/or DICOM files; default: a bundled sample",
    "mri:load_mri",
    model="fastgan",
    epochs=146,  # 1,296 steps of 16 slices: 150-190 s on a 2-core Zen 5, 240 s on a Zen 4
    default_image_size=(200, 160),
    parameters=(3_240_081, 318_417),
    # benchmarks/mri_fid_table.py: fastgan with hinge and spectral norm matched or beat mri
    # after 180 s (two seeds) and kept improving where mri stalled (22 minutes: FID 4.2,
    # recall 0.94); batch 16 (twice the steps) beat 32.
    defaults=(
        ("optim.batch_size", 16),
        ("optim.loss", "hinge"),
        ("model.spectral_norm", True),
        # At most three minutes on any machine. A --time-budget 3m (the augmentation's ramp
        # fitted to the steps that fit) trained 10-15% fewer steps, after its warm-up and
        # margin, and scored worse on 2 seeds of 3 (docs/training.md): the plan stays.
        ("train.time_limit", 180.0),
    ),
)
_dataset(
    "folder",
    "any folder of PNG/JPG/BMP/TIFF/WebP/GIF images (or DICOM files), searched recursively",
    "folder:load_folder",
    model="dcgan-proj",
    epochs=50,
    channels=None,
    labels="the subfolder each image lies in (or an archive's dataset.json or .cls labels)",
)
_dataset(
    "bps",
    "NASA BPS microscopy (16-bit TIFF + meta.csv); default: the public S3 bucket",
    "bps:load_bps",
    model="mri",
    epochs=20,
    default_image_size=(128, 128),
    parameters=(3_374_193, 705_505),
    labels="the particle type, dose or hours of meta.csv (--condition-on)",
)


@dataclass(frozen=True)
class Entry:
    """A loss or augmentation by name: its summary, and where its code is."""

    summary: str
    target: str  # "module:attribute", imported on first use

    def load(self) -> Any:
        return _load(self.target)


# The losses (gan.training.losses), by name: what D outputs under each.
LOSSES = {
    "ns": Entry(
        "BCE on D's logits, non-saturating -log D(G(z)) for G (the original GAN)",
        "gan.training.losses:NS",
    ),
    "hinge": Entry(
        "hinge on D's logits, -D(G(z)) for G (SAGAN, BigGAN)", "gan.training.losses:HINGE"
    ),
    "lsgan": Entry(
        "least squares on D's scores, targets 1 for reals and 0 for fakes",
        "gan.training.losses:LSGAN",
    ),
    "wgan-gp": Entry(
        "Wasserstein critic scores with a gradient penalty (Gulrajani et al. 2017)",
        "gan.training.losses:WGAN_GP",
    ),
    "rpgan": Entry(
        "R3GAN's relativistic pairing loss: each fake scored against a real; --r1-gamma "
        "penalises D's gradient on reals (R1) and fakes (R2) (Huang et al. 2024)",
        "gan.training.losses:RPGAN",
    ),
}
# DiffAugment's transform families (Zhao et al. 2020), by name (gan.training.augment).
AUGMENTS = {
    "color": Entry("brightness, saturation and contrast", "gan.training.augment:COLOR"),
    "translation": Entry(
        "shifts of up to 1/8 of the image, zero-filled", "gan.training.augment:TRANSLATION"
    ),
    "cutout": Entry("a zeroed square of half the image's size", "gan.training.augment:CUTOUT"),
}

# Experiment trackers (gan.runs), by name: each an implementation of gan.runs.tracking.Tracker.
TRACKERS = {
    "tensorboard": Entry(
        "TensorBoard event files in logs/<run>/", "gan.runs.tensorboard:TensorBoardTracker"
    ),
    "wandb": Entry("Weights & Biases, online or offline", "gan.runs.wandb_tracker:WandbTracker"),
    "mlflow": Entry("an MLflow server or local store", "gan.runs.mlflow_tracker:MlflowTracker"),
}


def dataset_help() -> str:
    """The help of --dataset: every registered name with its summary."""
    return "Dataset: " + "; ".join(f"{n}: {DATASETS.get(n).summary}" for n in DATASETS) + "."


def model_help() -> str:
    """The help of --model: every registered name, and the default of each dataset."""
    defaults = ", ".join(f"{n} -> {DATASETS.get(n).default_model}" for n in DATASETS)
    models = "; ".join(f"{n}: {MODELS.get(n).summary}" for n in MODELS)
    return f"Model: {models}. Default by dataset: {defaults}."


def loss_help() -> str:
    """The help of --loss: every loss with what D outputs under it."""
    return "Loss: " + "; ".join(f"{name}: {e.summary}" for name, e in LOSSES.items()) + "."
