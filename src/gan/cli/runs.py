"""`gan runs`: the runs of a workdir, one line each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gan.cli.options import user_errors
from gan.errors import GanError


@user_errors
def runs(
    workdir: Annotated[
        Path, typer.Option(help="The folder holding checkpoints/, logs/ and assets/.")
    ] = Path("."),
    json_out: Annotated[
        bool, typer.Option("--json", help="A JSON list of objects, one a run (key 'run').")
    ] = False,
) -> None:
    """List the runs of a workdir: what each trains, how far it got, its FID and status
    (training, finished, interrupted, killed or failed)."""
    from gan.runs import overview

    root = workdir.expanduser()
    if not root.is_dir():
        raise GanError(f"--workdir {root} is not a folder; give the folder you trained in.")
    found = overview.list_runs(root)
    if json_out:
        typer.echo(json.dumps([r.to_dict() for r in found], indent=2))
    elif not found:
        typer.echo(f"No runs under {root} (train one with gan train).")
    else:
        typer.echo(overview.table(found))
