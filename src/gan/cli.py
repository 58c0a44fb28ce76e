"""The `gan` command line: thin commands that translate options and call the library."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from gan import cli_bench, cli_outputs
from gan.cli_support import (
    BPS,
    DATASET_HELP,
    DIST,
    EVAL,
    MODEL_HELP,
    S3,
    ChannelsLastOption,
    CompileOption,
    DeviceOption,
    PrecisionOption,
    distributed_launch,
    image_size_option,
    numbers,
    user_errors,
)
from gan.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig

app = typer.Typer(
    help="Train generative adversarial networks on MNIST, brain MRI slices and image folders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command()
@user_errors
def train(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(help=DATASET_HELP)] = "mnist",
    data: Annotated[
        str | None, typer.Option(help="Folder or file with the data (default: per dataset).")
    ] = None,
    model: Annotated[str | None, typer.Option(help=MODEL_HELP)] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Passes over the data (default: per dataset).")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many optimizer steps.")
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option(min=0.001, help="Stop after this many seconds of training (checkpointed)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=65536, help="Micro-batch size B.")] = 32,
    accumulation_steps: Annotated[
        int,
        typer.Option(min=1, max=4096, help="K micro-batches per optimizer step (batch B*K)."),
    ] = 1,
    lr_g: Annotated[float, typer.Option(min=0, help="Generator learning rate (Adam).")] = 2e-4,
    lr_d: Annotated[float, typer.Option(min=0, help="Discriminator learning rate.")] = 2e-4,
    latent_dim: Annotated[int, typer.Option(min=1, max=65536, help="Latent size.")] = 100,
    image_size: Annotated[
        str | None,
        typer.Option(help="HxW to resize to, e.g. 28x28 or 200x160 (default: per dataset)."),
    ] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    channels_last: ChannelsLastOption = None,
    compile: CompileOption = False,
    seed: Annotated[int, typer.Option(min=0, help="Seed for weights, data order, noise.")] = 0,
    workdir: Annotated[Path, typer.Option(help="Where checkpoints/, logs/ and assets/ go.")] = Path(
        "."
    ),
    run_name: Annotated[
        str | None, typer.Option(help="Run folder name (default: dataset-model-time).")
    ] = None,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps.")] = 500,
    sample_every: Annotated[int, typer.Option(min=1, help="Sample grid every N steps.")] = 250,
    log_every: Annotated[int, typer.Option(min=1, help="Log losses every N steps.")] = 10,
    keep_checkpoints: Annotated[
        int, typer.Option(min=1, help="Step checkpoints kept per run (newest).")
    ] = 5,
    ema_decay: Annotated[
        float,
        typer.Option(
            min=0, max=0.9999999, help="Decay of G's moving average used for samples (0: off)."
        ),
    ] = 0.999,
    eval_every: Annotated[
        int | None,
        typer.Option(
            min=1, help="FID every N steps; keeps checkpoints/<run>/best.pt.", rich_help_panel=EVAL
        ),
    ] = None,
    eval_samples: Annotated[
        int, typer.Option(min=2, max=100_000, help="Samples per FID.", rich_help_panel=EVAL)
    ] = 2000,
    eval_features: Annotated[
        str | None,
        typer.Option(
            help="mnist-lenet, random-conv (default per image size).", rich_help_panel=EVAL
        ),
    ] = None,
    nproc: Annotated[
        int,
        typer.Option(
            min=1,
            max=1024,
            help="Processes on this machine (torchrun + DDP); --batch-size is "
            "per process, so the global batch is batch x accumulation x processes.",
            rich_help_panel=DIST,
        ),
    ] = 1,
    sync_bn: Annotated[
        bool,
        typer.Option("--sync-bn", help="SyncBatchNorm across processes.", rich_help_panel=DIST),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue a run: 'auto' (newest valid checkpoint of --run-name, or of the "
            "newest run; a new run if there is none) or a checkpoint path."
        ),
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Download the dataset first (mnist, torchvision).")
    ] = False,
    no_sign_request: Annotated[
        bool,
        typer.Option(
            "--no-sign-request", help="Anonymous S3 requests (public buckets).", rich_help_panel=S3
        ),
    ] = False,
    s3_workers: Annotated[
        int, typer.Option(min=1, max=256, help="Parallel S3 downloads.", rich_help_panel=S3)
    ] = 32,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="S3 cache (default ~/.cache/gan/s3).", rich_help_panel=S3),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache", help="Read S3 objects into memory, no cache.", rich_help_panel=S3
        ),
    ] = False,
    particle: Annotated[str | None, typer.Option(help="Fe or X-ray.", rich_help_panel=BPS)] = None,
    dose: Annotated[
        list[float] | None, typer.Option(help="Dose in Gy (repeatable).", rich_help_panel=BPS)
    ] = None,
    hours: Annotated[
        list[int] | None,
        typer.Option(help="Hours after exposure: 4, 24, 48 (repeatable).", rich_help_panel=BPS),
    ] = None,
    split: Annotated[
        str, typer.Option(help="train, val, test or all.", rich_help_panel=BPS)
    ] = "all",
    split_fractions: Annotated[
        str, typer.Option(help="train,val,test fractions.", rich_help_panel=BPS)
    ] = "0.8,0.1,0.1",
    clip_percentiles: Annotated[
        str, typer.Option(help="low,high percentiles for 16-bit images.", rich_help_panel=BPS)
    ] = "0.5,99.5",
) -> None:
    """Train a GAN. Outputs: checkpoints/<run>, logs/<run> (TensorBoard), assets/<run>."""
    if nproc > 1 and "LOCAL_RANK" not in os.environ:
        raise typer.Exit(distributed_launch(nproc))
    config = Config(
        data=DataConfig(
            dataset, data, image_size_option(image_size), download, no_sign_request, s3_workers,
            str(cache_dir) if cache_dir else None, no_cache, particle, tuple(dose or ()),
            tuple(hours or ()), split, numbers(split_fractions, 3, "--split-fractions"),
            numbers(clip_percentiles, 2, "--clip-percentiles"),
        ),
        model=ModelConfig(model, latent_dim),
        optim=OptimConfig(batch_size, accumulation_steps, lr_g, lr_d),
        train=TrainConfig(
            epochs, max_steps, time_limit, device, seed, str(workdir), run_name,
            checkpoint_every, sample_every, log_every, keep_checkpoints, ema_decay, sync_bn,
            eval_every, eval_samples, eval_features, precision, channels_last, compile,
        ),
    )  # fmt: skip
    from gan import training

    explicit = frozenset(
        name
        for name in ctx.params
        if getattr(ctx.get_parameter_source(name), "name", None) in ("COMMANDLINE", "ENVIRONMENT")
    )
    result = training.train(config, resume, explicit)
    paths = result["paths"]
    if paths is None:  # not rank 0: rank 0 reports
        return
    verb = "Stopped" if result["interrupted"] else "Finished"
    typer.echo(
        f"{verb} run {result['run']} at step {result['step']} in {result['seconds']:.1f} s. "
        f"Checkpoint: {paths.last}; logs: {paths.logs}; grids: {paths.assets}"
    )


app.command()(cli_outputs.sample)
app.command()(cli_outputs.evaluate)
app.command("plot-history")(cli_outputs.plot_history)
app.command()(cli_bench.bench)


def main() -> None:  # pragma: no cover - console entry for `python -m gan`
    app(prog_name="gan")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
