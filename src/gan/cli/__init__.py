"""The `gan` command line: thin commands that translate options and call the library."""

from __future__ import annotations

import sys

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


def main() -> None:  # pragma: no cover - console entry for `python -m gan`
    app(prog_name="gan")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
