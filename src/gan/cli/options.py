"""Pieces the `gan` commands share: error handling, the torchrun hand-off, the shared
options, and the config's fields as Typer options (each declared once, in
`gan.config.sections`; a command module never imports another)."""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from gan.config import FIELDS, Chosen, Config
from gan.config.given import FLAG, merge
from gan.config.options import Field
from gan.config.sections import SPEED
from gan.config.values import parse_image_size
from gan.errors import Diverged, GanError, OutOfMemory, SyncBatchNormNeedsCuda

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(command: F) -> F:
    """Print a GanError as one sentence and exit 1; Ctrl-C exits 130 without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from gan.progress import setup_console_logging

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


# ---- the config's fields as Typer options ----------------------------------------------------

BY_PARAM: dict[str, Field] = {f.param: f for f in FIELDS.values()}
_SECTION_PANELS = {
    "data": "Data",
    "model": "Model",
    "optim": "Optimizer",
    "train": "Training",
    "track": "Trackers",
}


def _parameter(f: Field) -> inspect.Parameter:
    """The Typer parameter of one config field."""
    default = f.default
    if f.opt.convert is not None and f.kind is not str:
        kind: Any = str  # read as text, turned into the value by the field's convert
        default = None if default is None else f.opt.show(default)
    elif f.many:
        kind, default = list[f.kind], None
    else:
        kind = f.kind
    # a switch both ways, so a flag can undo a config file's true or false
    decls = [f"{f.flag}/{_off(f)}"] if f.kind is bool else [f.flag]
    bounds = f.range_text()
    info = typer.Option(
        *decls,
        help=f.opt.help + _per_dataset(f) + (f" [{bounds}]" if bounds else ""),
        rich_help_panel=f.opt.panel or _SECTION_PANELS[f.section],
        callback=checker(f),
        metavar=f.opt.metavar,
        show_default=default is not None and default != (),
    )
    annotation = Annotated[kind | None if default is None else kind, info]
    return inspect.Parameter(
        f.param, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _off(f: Field) -> str:
    """A switch's other flag: --no-x for --x, --sign-request for --no-sign-request."""
    return "--" + f.flag[5:] if f.flag.startswith("--no-") else f"--no-{f.flag[2:]}"


def _per_dataset(f: Field) -> str:
    """' Per dataset: mri hinge, bps hinge.' for an option some datasets set otherwise."""
    from gan.config.catalog import DATASETS

    def show(value: Any) -> str:  # a switch by its flag: "mnist --conditional"
        if f.kind is bool:
            return f.flag if value else _off(f)
        return f.opt.show(value)

    own = [(n, dict(DATASETS.get(n).defaults).get(f.key)) for n in DATASETS]
    shown = [f"{n} {show(v)}" for n, v in own if v is not None]
    return f" Per dataset: {', '.join(shown)}." if shown else ""


def with_config_options(
    command: Callable[..., Any], sections: tuple[str, ...] | None = None
) -> Callable[..., Any]:
    """Give a `(ctx, ..., **options)` command one Typer option per config field (of the
    given sections only, when given)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(*args, **kwargs)

    own = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.kind != p.VAR_KEYWORD
    ]
    fields = [f for f in FIELDS.values() if sections is None or f.section in sections]
    generated = [_parameter(f) for f in fields]
    wrapper.__signature__ = inspect.Signature(own + generated)  # type: ignore[attr-defined]
    return wrapper


def config_from_command_line(
    ctx: typer.Context, values: dict[str, Any], config_file: Path | None
) -> tuple[Config, Chosen]:
    """Defaults, then the file's options, then the flags given; and the keys set by the user,
    each with where it came from (the plan records it in run.json)."""
    from gan.config.file import read_config_file

    from_file = read_config_file(config_file) if config_file is not None else {}
    given = ("COMMANDLINE", "ENVIRONMENT")  # not a default
    from_flags = {
        BY_PARAM[name].key: tuple(value or ()) if BY_PARAM[name].many else value
        for name, value in values.items()
        if getattr(ctx.get_parameter_source(name), "name", None) in given
    }
    return merge(from_file, from_flags, FLAG)
