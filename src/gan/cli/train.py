"""`gan train`: its options are built from the config's fields, never listed by hand."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from gan.cli.options import checker, distributed_launch, user_errors
from gan.config import FIELDS, Config
from gan.config.options import Field

BY_PARAM: dict[str, Field] = {f.param: f for f in FIELDS.values()}
_SECTION_PANELS = {"data": "Data", "model": "Model", "optim": "Optimizer", "train": "Training"}


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
) -> tuple[Config, frozenset[str]]:
    """Defaults, then the file's options, then the flags given; and the keys set by the user."""
    from gan.config.file import read_config_file

    from_file = read_config_file(config_file) if config_file is not None else {}
    given = ("COMMANDLINE", "ENVIRONMENT")  # not a default
    from_flags = {
        BY_PARAM[name].key: tuple(value) if BY_PARAM[name].many else value
        for name, value in values.items()
        if getattr(ctx.get_parameter_source(name), "name", None) in given
    }
    chosen = {**from_file, **from_flags}
    return Config().replace(chosen), frozenset(chosen)


@with_config_options
@user_errors
def train(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            help="A TOML file of options, e.g. logs/<run>/config.toml (its sections as in "
            "run.json); flags given beside it win over it.",
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue a run: 'auto' (newest valid checkpoint of --run-name, or of the "
            "newest run; an error if there is none), 'auto-or-new' (the same, or a new run) "
            "or a checkpoint path.",
        ),
    ] = None,
    nproc: Annotated[
        int,
        typer.Option(
            min=1,
            max=1024,
            help="Processes on this machine (torchrun + DDP); --batch-size is "
            "per process, so the global batch is batch x accumulation x processes.",
        ),
    ] = 1,
    **options: Any,
) -> None:
    """Train a GAN. Outputs: checkpoints/<run>, logs/<run> (TensorBoard), assets/<run>."""
    if nproc > 1 and "LOCAL_RANK" not in os.environ:
        raise typer.Exit(distributed_launch(nproc))
    run_config, chosen = config_from_command_line(ctx, options, config)
    from gan.train import run as training

    result = training.train(run_config, resume, chosen)
    if result.paths is None:  # not rank 0: rank 0 reports
        return
    verb = "Stopped" if result.interrupted else "Finished"
    typer.echo(
        f"{verb} run {result.run} at step {result.step} in {result.seconds:.1f} s. "
        f"Checkpoint: {result.paths.run_last}; logs: {result.paths.logs}; "
        f"grids: {result.paths.assets}"
    )
