"""The option declarations of the config sections `[data]`, `[model]` and `[optim]` (`[train]`
is in `gan.config.training`, `[track]` in `gan.config.tracking`): one dataclass field per
option, its flag, help, default, bounds, panel and whether it defines the run (`fixed`) in
its `option(...)`, and the panels and limits the sections share. `gan.config` assembles them.
Importing this module does not load torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from gan.config.catalog import LOSSES, dataset_help, loss_help, model_help
from gan.config.options import option
from gan.config.values import (
    augment_policy,
    augment_strength,
    class_names,
    fractions,
    joined,
    lower_choice,
    parse_image_size,
    percentiles,
    size_text,
)

SEED_MAX = 2**32 - 1  # numpy's limit; torch and Python take more
STEPS_MAX = 10**12  # steps and intervals: far beyond any run, well inside int64

S3 = "S3 sources (--data s3://bucket/prefix)"
BPS = "BPS filters and decoding"
DICOM = "DICOM decoding (mri, folder)"
DIST = "Several processes (torchrun, DDP)"
EVAL = "Evaluation during training"
SPEED = "Speed"
OUTPUTS = "Outputs and intervals"
LOSS = "Losses and regularisers"
AUGMENT = "Augmentation"
GROW = "Coarse-to-fine training (--grow)"


@dataclass(kw_only=True)
class DataConfig:
    name: str = option("mnist", dataset_help(), flag="--dataset", fixed=True)
    source: str | None = option(
        None,
        "Folder, file or s3://bucket/prefix with the data (default: per dataset).",
        flag="--data",
    )
    image_size: tuple[int, int] | None = option(
        None,
        "HxW to resize to, e.g. 28x28 or 200x160 (default: per dataset).",
        convert=parse_image_size,
        show=size_text,
        fixed=True,
        metavar="HxW",
    )
    limit: int | None = option(
        None,
        "Only the first N images (files, objects, BPS rows or MNIST digits) after filtering, "
        "in file-name order: a quick look at a large dataset.",
        min=1,
        max=10**9,
        fixed=True,
    )
    classes: tuple[str, ...] = option(
        (),
        "Only the images of these classes, e.g. 0,1,2,3,4: MNIST digits, folder subfolders, "
        "BPS --condition-on values, checked against the data's labels; a --conditional "
        "model numbers them 0..k-1 in the data's order and keeps their names (gan sample "
        "--label 7). Applied before --limit.",
        convert=class_names,
        show=",".join,
        fixed=True,
        metavar="A,B,...",
    )
    download: bool = option(False, "Download the dataset first (mnist, torchvision).")
    no_sign_request: bool = option(False, "Anonymous S3 requests (public buckets).", panel=S3)
    s3_workers: int = option(32, "Parallel S3 downloads.", min=1, max=256, panel=S3)
    cache_dir: str | None = option(None, "S3 cache (default ~/.cache/gan/s3).", panel=S3)
    no_cache: bool = option(False, "Read S3 objects into memory, no cache.", panel=S3)
    dicom_window: str = option(
        "percentile",
        "How DICOM intensities (after the rescale slope and intercept) become 0-255: "
        "percentile (each slice's 0.5-99.5th) or file (the file's window center and width).",
        convert=lower_choice(("percentile", "file")),
        panel=DICOM,
        fixed=True,
    )
    particle: str | None = option(None, "Fe or X-ray.", panel=BPS, fixed=True)
    dose: tuple[float, ...] = option(
        (), "Dose in Gy (repeatable).", min=0, max=1_000_000, panel=BPS, fixed=True
    )
    hours: tuple[int, ...] = option(
        (),
        "Hours after exposure: 4, 24, 48 (repeatable).",
        min=0,
        max=100_000,
        panel=BPS,
        fixed=True,
    )
    split: str = option(
        "all",
        "train, val, test or all.",
        convert=lower_choice(("train", "val", "test", "all")),
        panel=BPS,
        fixed=True,
    )
    split_fractions: tuple[float, float, float] = option(
        (0.8, 0.1, 0.1),
        "train,val,test fractions.",
        convert=fractions,
        show=joined,
        panel=BPS,
        fixed=True,
    )
    condition_on: str = option(
        "particle",
        "The label --conditional trains on: particle, dose or hours.",
        convert=lower_choice(("particle", "dose", "hours")),
        panel=BPS,
        fixed=True,
    )
    clip_percentiles: tuple[float, float] = option(
        (0.5, 99.5),
        "low,high percentiles for 16-bit images.",
        convert=percentiles,
        show=joined,
        panel=BPS,
        fixed=True,
    )


@dataclass(kw_only=True)
class ModelConfig:
    name: str | None = option(None, model_help(), flag="--model", fixed=True)
    latent_dim: int = option(100, "Latent size.", min=1, max=65536, fixed=True)
    spectral_norm: bool = option(
        False, "Spectral normalisation on D's convolutions and linear layers.", fixed=True
    )
    conditional: bool = option(
        False,
        "Train on the data's labels (MNIST digits, BPS --condition-on, folder subfolders): "
        "class-conditional BatchNorm in G, a projection D; sample with gan sample --label.",
        fixed=True,
    )
    grow: bool = option(
        False,
        "Coarse to fine (ProGAN): start at 1/--grow-from of the image size and grow to it "
        "in stages, each faded in; grids and samples are shown at full size (fastgan).",
        panel=GROW,
        fixed=True,
    )
    grow_from: int = option(
        8,
        "With --grow: the first stage's fraction of the size (2, 4 or 8: 1/8 is 25x20 of 200x160).",
        min=2,
        max=8,
        panel=GROW,
        fixed=True,
    )
    grow_share: float = option(
        0.5,
        "With --grow: the share of the planned steps spent below full size, split evenly "
        "among the coarse stages.",
        min=0,
        max=1,
        max_open=True,
        panel=GROW,
        fixed=True,
    )
    grow_fade: float = option(
        0.5,
        "With --grow: the part of each stage, at its start, over which it fades in over the "
        "stage below (0: switch at once).",
        min=0,
        max=1,
        panel=GROW,
        fixed=True,
    )


@dataclass(kw_only=True)
class OptimConfig:
    batch_size: int = option(32, "Micro-batch size B.", min=1, max=65536, fixed=True)
    accumulation_steps: int = option(
        1, "K micro-batches per optimizer step (batch B*K).", min=1, max=4096, fixed=True
    )
    lr_g: float = option(2e-4, "Generator learning rate (Adam).", min=0, max=10, min_open=True)
    lr_d: float = option(2e-4, "Discriminator learning rate.", min=0, max=10, min_open=True)
    lr_decay: float = option(
        0.0,
        "Fraction of the planned run, at its end, over which both learning rates fall "
        "linearly to 0 (0: constant).",
        min=0,
        max=1,
    )
    beta1: float = option(0.5, "Adam beta1 of both networks.", min=0, max=1, max_open=True)
    beta2: float = option(0.999, "Adam beta2 of both networks.", min=0, max=1, max_open=True)
    loss: str = option(
        "ns",
        loss_help(),
        convert=lower_choice(tuple(LOSSES)),
        panel=LOSS,
        fixed=True,
    )
    r1_gamma: float = option(
        0.0, "R1 penalty on reals, gamma (0: off).", min=0, max=1_000_000, panel=LOSS
    )
    r1_every: int = option(
        16, "Lazy R1: every N steps, gamma scaled by N.", min=1, max=1_000_000, panel=LOSS
    )
    gp_weight: float = option(
        10.0, "Gradient penalty weight of wgan-gp.", min=0, max=1_000_000, panel=LOSS
    )
    n_critic: int = option(1, "D steps per G step.", min=1, max=100, panel=LOSS, fixed=True)
    augment: str = option(
        "none",
        "DiffAugment policy: none, or a combination of color, translation, cutout "
        "(e.g. color,translation,cutout). Unset, data of fewer than 2,000 images gets "
        "translation,cutout with --augment-p auto.",
        convert=augment_policy,
        panel=AUGMENT,
    )
    augment_p: str | float = option(
        "auto",
        "Probability of each transform per image: auto (adapts to D's overfitting, as "
        "StyleGAN2-ADA) or a number in [0, 1] (1: DiffAugment as published).",
        convert=augment_strength,
        panel=AUGMENT,
    )
    ada_target: float = option(
        0.6,
        "auto: the value of mean(sign D(reals)) that p steers towards.",
        min=0,
        max=1,
        panel=AUGMENT,
    )
    ada_ramp: float = option(
        0.2,
        "auto: the fraction of the run's images in which p can go from 0 to 1.",
        min=0,
        max=1,
        min_open=True,
        panel=AUGMENT,
    )
