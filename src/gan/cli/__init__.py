"""The `gan` command line: thin commands that translate options and call the library."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gan.cli import bench as cli_bench
from gan.cli import data as cli_data
from gan.cli import outputs as cli_outputs
from gan.cli import runs as cli_runs
from gan.cli import train as cli_train

app = typer.Typer(
    help="Train generative adversarial networks on MNIST, brain MRI slices and image folders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


app.command()(cli_train.train)
app.command()(cli_outputs.sample)
app.command()(cli_outputs.evaluate)
app.command()(cli_outputs.export)
app.command("plot-history")(cli_outputs.plot_history)
app.command()(cli_runs.runs)
app.command()(cli_bench.bench)
app.add_typer(cli_data.app, name="data")


def main(argv: list[str] | None = None) -> None:
    """`main.py`: the CLI, and `main.py CKPT [OPTIONS]` writes a checkpoint's grid, as
    `gan sample CKPT` does (the form the uv/Typer project this tool grew from used)."""
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    commands |= {g.name for g in app.registered_groups}
    first = args[0] if args else ""
    if first not in commands and not first.startswith("-") and Path(first).expanduser().is_file():
        args.insert(0, "sample")
    app(args=args, prog_name="gan")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
