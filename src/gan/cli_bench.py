"""`gan bench`: how fast each model trains here, against the GEMM peak and a naive loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gan.cli_support import (
    ChannelsLastOption,
    CompileOption,
    DeviceOption,
    image_size_option,
    precision,
    user_errors,
)


def _names(text: str, flag: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise typer.BadParameter("give at least one name.", param_hint=flag)
    return list(dict.fromkeys(names))


@user_errors
def bench(
    models: Annotated[
        str, typer.Option(help="Comma-separated models, or all (every registered model).")
    ] = "all",
    precision_: Annotated[
        str,
        typer.Option(
            "--precision",
            help="Comma-separated precisions: auto (the device's default), fp32, bf16, fp16.",
        ),
    ] = "auto",
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, max=65536, help="Micro-batch (default: 64; mri: 32)."),
    ] = None,
    accumulation_steps: Annotated[
        int | None,
        typer.Option(min=1, max=4096, help="Micro-batches per step (default: 1; mri: 8)."),
    ] = None,
    image_size: Annotated[
        str | None,
        typer.Option(help="HxW for every model (default: 28x28; mri: 200x160)."),
    ] = None,
    seconds: Annotated[
        float,
        typer.Option(min=0.01, max=3600, help="Timed seconds per model (and per baseline)."),
    ] = 10.0,
    device: DeviceOption = "auto",
    channels_last: ChannelsLastOption = None,
    compile: CompileOption = False,
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="Also time the naive loop.")
    ] = True,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
) -> None:
    """Measure training speed: images/s, GFLOP/s, fraction of the GEMM peak, memory."""
    from gan.bench import BenchOptions, run_bench, table, write_json

    precisions = [precision(p) for p in _names(precision_, "--precision")]
    if models.strip() == "all":
        from gan.models import MODELS

        models = ",".join(MODELS.names())
    options = BenchOptions(
        models=_names(models, "--models"),
        precisions=precisions,
        batch_size=batch_size,
        accumulation_steps=accumulation_steps,
        image_size=image_size_option(image_size),
        seconds=seconds,
        device=device,
        channels_last=channels_last,
        compile=compile,
        baseline=baseline,
    )
    report = run_bench(options)
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
