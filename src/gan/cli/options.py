"""Pieces the `gan` commands share: error handling, option parsing, the torchrun hand-off."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from gan.config import FIELDS
from gan.config.options import Field
from gan.config.sections import SPEED
from gan.config.values import parse_image_size
from gan.errors import Diverged, GanError, OutOfMemory, SyncBatchNormNeedsCuda

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(command: F) -> F:
    """Print a GanError as one sentence and exit 1; Ctrl-C exits 130 without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from gan.runs.tracking import setup_console_logging

        setup_console_logging()
        try:
            return command(*args, **kwargs)
        except GanError as exc:
            rank = (
                f" (rank {os.environ['RANK']})"
                if int(os.environ.get("WORLD_SIZE", "1")) > 1
                else ""
            )
            typer.secho(f"Error{rank}: {cli_message(exc)}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.secho("Interrupted.", err=True, fg=typer.colors.YELLOW)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def cli_message(exc: GanError) -> str:
    """The error in the command line's words: the flags to change, where there are some."""
    if isinstance(exc, Diverged):
        return (
            f"Training diverged: a loss became NaN or infinite in {exc.span}; lower "
            "--lr-g/--lr-d and resume from the last checkpoint, which is untouched."
        )
    if isinstance(exc, OutOfMemory):
        return (
            f"CUDA ran out of memory at --batch-size {exc.batch_size}; lower --batch-size or "
            "raise --accumulation-steps (same effective batch, less memory)."
        )
    if isinstance(exc, SyncBatchNormNeedsCuda):
        return "--sync-bn needs CUDA GPUs (SyncBatchNorm does not run on the CPU)."
    return str(exc)


def image_size_option(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        return parse_image_size(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}.") from None


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


def checker(f: Field) -> Callable[[Any], Any]:
    """The Typer callback of an option: the config field's own check, as a usage error."""

    def callback(value: Any) -> Any:
        if f.many:
            value = tuple(value or ())
        try:
            return f.check(value)
        except ValueError as exc:
            raise typer.BadParameter(f"{exc}.") from None

    return callback


device = checker(FIELDS["train.device"])
precision = checker(FIELDS["train.precision"])

DeviceOption = Annotated[str, typer.Option(callback=device, help=FIELDS["train.device"].opt.help)]
ChannelsLastOption = Annotated[
    bool | None,
    typer.Option(
        "--channels-last/--no-channels-last",
        help=FIELDS["train.channels_last"].opt.help,
        rich_help_panel=SPEED,
    ),
]
CompileOption = Annotated[
    bool,
    typer.Option(
        "--compile/--no-compile", help=FIELDS["train.compile"].opt.help, rich_help_panel=SPEED
    ),
]
