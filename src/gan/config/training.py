"""The options of the `[train]` section: the run's length and stops, where its outputs go
and how often, the device, the seed, evaluation during training and speed. Declared as the
other sections are (`gan.config.sections`). Importing this module does not load torch."""

from __future__ import annotations

from dataclasses import dataclass

from gan.config.catalog import blocks_help
from gan.config.options import option
from gan.config.sections import DIST, EVAL, OUTPUTS, SEED_MAX, SPEED, STEPS_MAX
from gan.config.values import (
    device_name,
    duration,
    interval_or_auto,
    lower_choice,
    run_name,
    seconds_text,
    sha256_hex,
)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
TRANSFER = "Transfer (small data)"


@dataclass(kw_only=True)
class TrainConfig:
    epochs: int | None = option(
        None, "Passes over the data (default: per dataset).", min=1, max=10**9
    )
    max_steps: int | None = option(
        None, "Stop after this many optimizer steps.", min=1, max=STEPS_MAX
    )
    time_budget: float | None = option(
        None,
        "Train for this long (300, 5m, 1h30m) with every schedule fitted to it: a short "
        "warm-up measures the step rate and fixes the planned steps (--planned-steps, "
        "recorded in config.toml), which the learning-rate decay, ADA's ramp and the grids "
        "follow. Replaces --epochs and --max-steps; on --resume, a new budget plans the "
        "steps that fit it from the step resumed.",
        convert=duration,
        show=seconds_text,
        metavar="DURATION",
    )
    planned_steps: int | None = option(
        None,
        "The steps a --time-budget's warm-up planned; given (as config.toml records it), "
        "the run trains exactly that plan, without a warm-up.",
        min=1,
        max=STEPS_MAX,
    )
    time_limit: float | None = option(
        None,
        "Stop after this long of training (300, 5m, 1h30m), checkpointed; the planned "
        "schedules do not change (--time-budget fits them to the time).",
        convert=duration,
        show=seconds_text,
        metavar="DURATION",
    )
    stop_at: int | None = option(
        None,
        "Stop at this step without changing the run's planned length (what --augment-p "
        "auto's ramp follows); the config.toml of a run stopped early records it.",
        min=1,
        max=STEPS_MAX,
    )
    init_from: str | None = option(
        None,
        "Start this new run (step 0, fresh optimizers, its own schedule) from the G, D and "
        "G's moving average of another run's checkpoint, loaded as safely as any; its "
        "model options (--model, --latent-dim, --conditional, ...) come with it, no others. "
        "Its image size and channels must be the data's; a conditional model with another "
        "number of classes gets new class embeddings (docs/training.md, Small data).",
        panel=TRANSFER,
        fixed=True,
        metavar="CHECKPOINT",
    )
    init_sha256: str | None = option(
        None,
        "The SHA-256 the --init-from checkpoint must have: set from the file when a run "
        "starts, recorded in config.toml, so that a replay (--config) or a resume refuses a "
        "file that has changed since, in one sentence.",
        panel=TRANSFER,
        fixed=True,
        convert=sha256_hex,
        metavar="HEX",
    )
    freeze_d: int = option(
        0,
        "FreezeD (Mo et al. 2020): D's first N blocks get no gradient, the rest train. A "
        "block is a layer with weights and the BatchNorm after it; D's last, its output layer, "
        f"always trains. Blocks per model: {blocks_help()}.",
        min=0,
        max=64,
        panel=TRANSFER,
        fixed=True,
    )
    device: str = option(
        "auto", "auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps.", convert=device_name
    )
    seed: int = option(0, "Seed for weights, data order, noise.", min=0, max=SEED_MAX, fixed=True)
    workdir: str = option(".", "Where checkpoints/, logs/ and assets/ go.", panel=OUTPUTS)
    run_name: str | None = option(
        None, "Run folder name (default: dataset-model-time).", convert=run_name, panel=OUTPUTS
    )
    checkpoint_every: int = option(
        500, "Checkpoint every N steps.", min=1, max=STEPS_MAX, panel=OUTPUTS
    )
    sample_every: str | int = option(
        "auto",
        "Sample grid every N steps, or auto: about 10 grids per run, whatever its length.",
        convert=interval_or_auto,
        panel=OUTPUTS,
    )
    log_every: int = option(10, "Log losses every N steps.", min=1, max=STEPS_MAX, panel=OUTPUTS)
    keep_checkpoints: int = option(
        5, "Step checkpoints kept per run (newest).", min=1, max=1_000_000, panel=OUTPUTS
    )
    ema_decay: float = option(
        0.999,
        "Decay of G's moving average used for samples (0: off).",
        min=0,
        max=1,
        max_open=True,
        fixed=True,
    )
    sync_bn: bool = option(False, "SyncBatchNorm across processes.", panel=DIST)
    eval_every: int | None = option(
        None,
        "FID every N steps; keeps checkpoints/<run>/best.pt.",
        min=1,
        max=STEPS_MAX,
        panel=EVAL,
    )
    eval_samples: int = option(2000, "Samples per FID.", min=2, max=100_000, panel=EVAL)
    eval_features: str | None = option(
        None, "mnist-lenet, random-conv (default per image size).", panel=EVAL
    )
    precision: str = option(
        "auto",
        "auto (bf16 on GPUs and CPUs with bf16 arithmetic, fp16 on older GPUs, else fp32), "
        "fp32, bf16 or fp16 (with a loss scaler).",
        convert=lower_choice(PRECISIONS),
        panel=SPEED,
    )
    channels_last: bool | None = option(
        None,
        "NHWC memory layout (default: on in bf16/fp16, on CUDA, and for fp32 on AVX2 CPUs "
        "without AVX-512; off for fp32 on other CPUs and MPS).",
        panel=SPEED,
    )
    compile: bool = option(
        False,
        "torch.compile the training passes (warns and runs without where it cannot).",
        negatable=True,
        panel=SPEED,
    )
