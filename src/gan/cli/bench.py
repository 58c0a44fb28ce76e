"""`gan bench`: how fast each model trains here, against the GEMM peak and a naive loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gan.cli.options import (
    ChannelsLastOption,
    CompileOption,
    DeviceOption,
    image_size_option,
    precision,
    user_errors,
)
from gan.config.catalog import MODELS


def _names(text: str, flag: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise typer.BadParameter("give at least one name.", param_hint=flag)
    return list(dict.fromkeys(names))


ModelsOption = Annotated[
    str, typer.Option(help="Comma-separated models, or all (every registered model).")
]
PrecisionsOption = Annotated[
    str,
    typer.Option(
        "--precision",
        help="Comma-separated precisions: auto (the device's default), fp32, bf16, fp16.",
    ),
]
BatchOption = Annotated[
    int | None, typer.Option(min=1, max=65536, help="Micro-batch (default: 64; mri: 32).")
]
AccumulationOption = Annotated[
    int | None,
    typer.Option(min=1, max=4096, help="Micro-batches per step (default: 1; mri: 8)."),
]
SizeOption = Annotated[
    str | None, typer.Option(help="HxW for every model (default: 28x28; mri: 200x160).")
]
SecondsOption = Annotated[
    float, typer.Option(min=0.01, max=3600, help="Timed seconds per model (and per baseline).")
]
BaselineOption = Annotated[
    bool, typer.Option("--baseline/--no-baseline", help="Also time the naive loop.")
]
JsonOption = Annotated[
    Path | None, typer.Option("--json", help="Also write the results as JSON here.")
]


@user_errors
def bench(
    models: ModelsOption = "all",
    precision_: PrecisionsOption = "auto",
    batch_size: BatchOption = None,
    accumulation_steps: AccumulationOption = None,
    image_size: SizeOption = None,
    seconds: SecondsOption = 10.0,
    device: DeviceOption = "auto",
    channels_last: ChannelsLastOption = None,
    compile: CompileOption = False,
    baseline: BaselineOption = True,
    json_path: JsonOption = None,
) -> None:
    """Measure training speed: images/s, GFLOP/s, fraction of the GEMM peak, memory."""
    from gan.bench import BenchOptions, run_bench

    if models.strip() == "all":
        models = ",".join(MODELS.names())
    options = BenchOptions(
        models=_names(models, "--models"),
        precisions=[precision(p) for p in _names(precision_, "--precision")],
        batch_size=batch_size,
        accumulation_steps=accumulation_steps,
        image_size=image_size_option(image_size),
        seconds=seconds,
        device=device,
        channels_last=channels_last,
        compile=compile,
        baseline=baseline,
    )
    _report(run_bench(options), json_path)


def _report(report: dict, json_path: Path | None) -> None:
    """The table, the JSON file if asked for, and exit 1 if a model could not be measured."""
    from gan.bench import table, write_json

    typer.echo(table(report))
    if json_path is not None:
        write_json(report, json_path)
        typer.echo(f"Wrote {json_path}")
    failed = [r["model"] for r in report["results"] if "error" in r]
    if failed:
        typer.secho(
            f"Error: {', '.join(failed)} could not be measured (above).",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(1)
