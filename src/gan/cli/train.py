"""`gan train`: its options are built from the config's fields, never listed by hand."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from gan.cli.options import (
    config_from_command_line,
    distributed_launch,
    user_errors,
    with_config_options,
)


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
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the resolved plan (the options not at their defaults and where each "
            "came from, the schedule, the model's size; with --resume what it changes) and "
            "exit: nothing is trained, loaded or written.",
        ),
    ] = False,
    **options: Any,
) -> None:
    """Train a GAN. Outputs: checkpoints/<run>, logs/<run> (TensorBoard), assets/<run>."""
    run_config, chosen = config_from_command_line(ctx, options, config)
    if dry_run:
        from gan.training.preview import preview

        typer.echo(preview(run_config, resume=resume, chosen=chosen))
        return
    if nproc > 1 and "LOCAL_RANK" not in os.environ:
        raise typer.Exit(distributed_launch(nproc))
    from gan.training import run as training

    result = training.train(run_config, resume=resume, chosen=chosen)
    if result.paths is None:  # not rank 0: rank 0 reports
        return
    verb = "Stopped" if result.interrupted else "Finished"
    typer.echo(
        f"{verb} run {result.run} at step {result.step} in {result.seconds:.1f} s. "
        f"Checkpoint: {result.paths.run_last}; logs: {result.paths.logs}; "
        f"grids: {result.paths.assets}"
    )
