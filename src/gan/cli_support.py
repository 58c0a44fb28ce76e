"""Pieces the `gan` commands share: error handling, option parsing, the torchrun hand-off."""

from __future__ import annotations

import functools
import math
import os
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from gan.config import parse_image_size
from gan.errors import GanError

F = TypeVar("F", bound=Callable[..., Any])

# Kept in step with the registries by tests/test_config.py (importing them here would load torch).
DATASET_HELP = (
    "Dataset: mnist (IDX files), mri (slices/NIfTI; bundled sample by default), folder, "
    "bps (NASA microscopy; public S3 bucket by default)."
)
MODEL_HELP = (
    "Model: mlp, dcgan, dcgan-proj, fc-dcgan, mri. Default by dataset: mnist -> dcgan-proj, "
    "mri -> mri, folder -> dcgan-proj, bps -> mri."
)
S3 = "S3 sources (--data s3://bucket/prefix)"
BPS = "BPS filters and decoding"
DIST = "Several processes (torchrun, DDP)"
EVAL = "Evaluation during training"
SPEED = "Speed"
PRECISION_HELP = (
    "auto (bf16 on GPUs and CPUs with bf16 arithmetic, fp16 on older GPUs, else fp32), "
    "fp32, bf16 or fp16 (with a loss scaler)."
)


def user_errors(command: F) -> F:
    """Print a GanError as one sentence and exit 1; Ctrl-C exits 130 without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from gan.tracking import setup_console_logging

        setup_console_logging()
        try:
            return command(*args, **kwargs)
        except GanError as exc:
            rank = (
                f" (rank {os.environ['RANK']})"
                if int(os.environ.get("WORLD_SIZE", "1")) > 1
                else ""
            )
            typer.secho(f"Error{rank}: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.secho("Interrupted.", err=True, fg=typer.colors.YELLOW)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def image_size_option(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        return parse_image_size(value)
    except GanError as exc:
        raise typer.BadParameter(str(exc)) from None


def numbers(text: str, count: int, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise typer.BadParameter(
            f"{text!r} is not {count} comma-separated numbers.", param_hint=flag
        )
    return values


def distributed_launch(nproc: int) -> int:
    """Run this same command under torchrun, without --nproc."""
    from gan.distributed import launch

    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            argv.append(arg)
    return launch(nproc, argv)


def device(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value.strip().lower()):
        raise typer.BadParameter(f"{value!r} is not one of auto, cpu, cuda, cuda:N, mps.")
    return value.strip().lower()


DeviceOption = Annotated[
    str,
    typer.Option(
        callback=device, help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps."
    ),
]


def precision(value: str) -> str:
    from gan.config import PRECISIONS

    if value.strip().lower() not in PRECISIONS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(PRECISIONS)}.")
    return value.strip().lower()


PrecisionOption = Annotated[
    str, typer.Option(callback=precision, help=PRECISION_HELP, rich_help_panel=SPEED)
]
ChannelsLastOption = Annotated[
    bool | None,
    typer.Option(
        "--channels-last/--no-channels-last",
        help="NHWC memory layout (default: on in bf16/fp16, on CUDA, and for fp32 on AVX2 "
        "CPUs without AVX-512; off for fp32 on other CPUs and MPS).",
        rich_help_panel=SPEED,
    ),
]
CompileOption = Annotated[
    bool,
    typer.Option(
        "--compile/--no-compile",
        help="torch.compile the training passes (warns and runs without where it cannot).",
        rich_help_panel=SPEED,
    ),
]
