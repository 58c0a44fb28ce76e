"""`gan sample`, `gan evaluate`, `gan export` and `gan plot-history`: commands that make
something from a run's checkpoints or history."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from gan.cli.options import DeviceOption, user_errors
from gan.config.sections import SEED_MAX
from gan.outputs import BATCH_SIZE, METRICS_TEXT, NUM_SAMPLES, SEED


class ExportFormat(StrEnum):
    safetensors = "safetensors"
    exported = "exported"
    onnx = "onnx"


class SampleFormat(StrEnum):
    grid = "grid"
    png = "png"
    npy = "npy"
    gif = "gif"


Checkpoint = Annotated[Path, typer.Argument(help="A checkpoint, e.g. checkpoints/last.pt.")]
SampleNum = Annotated[
    int | None,
    typer.Option(min=1, max=100_000, help="How many images (default 64), or walks (default 8)."),
]
SampleOut = Annotated[Path | None, typer.Option(help="Output file (grid, npy) or folder (png).")]
SampleRow = Annotated[int | None, typer.Option(min=1, max=100_000, help="Images per grid row.")]
SampleSeed = Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed for the latents.")]
SampleFormatOption = Annotated[
    SampleFormat,
    typer.Option(
        "--format",
        help="grid: one PNG; png: one PNG per image; npy: NxCxHxW in [0, 1]; "
        "gif: a latent walk, one frame a step (with --interpolate).",
    ),
]
Truncation = Annotated[
    float | None,
    typer.Option(
        max=100,
        help="Draw latents from a normal truncated at +-PSI (BigGAN): typical images, "
        "less variety. At least 0.04; 0.5 to 2 are typical.",
    ),
]
Interpolate = Annotated[
    int | None,
    typer.Option(
        max=1000,
        help="Walk between random latents in STEPS steps (spherical interpolation): "
        "one walk a row, --num walks.",
    ),
]
Label = Annotated[
    str | None,
    typer.Option(
        help="Images of this class only (a conditional checkpoint: e.g. 7, Fe). Without "
        "it, a conditional model's grid has one class per row.",
    ),
]


@user_errors
def sample(
    checkpoint: Checkpoint,
    num: SampleNum = None,
    out: SampleOut = None,
    nrow: SampleRow = None,
    seed: SampleSeed = 0,
    format: SampleFormatOption = SampleFormat.grid,
    truncation: Truncation = None,
    interpolate: Interpolate = None,
    label: Label = None,
    device: DeviceOption = "auto",
) -> None:
    """Generate images from a checkpoint (no model flags: the checkpoint knows its model)."""
    from gan.outputs import sample as sampling

    path = sampling.sample(
        checkpoint,
        num=num,
        out=out,
        nrow=nrow,
        seed=seed,
        fmt=format.value,
        device=device,
        truncation=truncation,
        interpolate=interpolate,
        label=label,
    )
    typer.echo(str(path))


RealsOption = Annotated[
    str | None,
    typer.Option(
        "--limit",
        help="The reals to score against: all of the data (within the run's --classes and "
        "filters), or the first N (default: the run's own --limit). E.g. a run trained on "
        "--limit 200 scored against every image with --limit all.",
    ),
]


@user_errors
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint, e.g. checkpoints/last.pt.")],
    data: Annotated[
        str | None,
        typer.Option(
            help="Real images to score against (default: the checkpoint's dataset where it "
            "was read from the dataset's own place, e.g. MNIST in ./data or the bundled MRI "
            "sample; a checkpoint that names a path or address needs --data)."
        ),
    ] = None,
    limit: RealsOption = None,
    num_samples: Annotated[
        int, typer.Option(min=2, max=1_000_000, help="Generated images to score.")
    ] = NUM_SAMPLES,
    metrics: Annotated[
        str,
        typer.Option(
            help="Any of fid,kid,pr,dc,nn,ifid. dc: density and coverage (Naeem et al. "
            "2020, k = 5); nn: the copy check, each sample's distance to its nearest "
            "training image against the data's own spacing; ifid: intra-class FID, per "
            "class and their mean (a conditional checkpoint and labelled data)."
        ),
    ] = METRICS_TEXT,
    features: Annotated[
        str | None,
        typer.Option(help="mnist-lenet (default for 28x28 gray), random-conv (else), inception."),
    ] = None,
    features_weights: Annotated[
        Path | None, typer.Option(help="Inception weights file (or GAN_INCEPTION_WEIGHTS).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=65536, help="Feature batch size.")
    ] = BATCH_SIZE,
    seed: Annotated[
        int, typer.Option(min=0, max=SEED_MAX, help="Seed for the generated samples.")
    ] = SEED,
    device: DeviceOption = "auto",
) -> None:
    """Score a checkpoint: FID, KID, precision/recall, density/coverage; the last line
    printed is JSON."""
    from gan.outputs.evaluate import evaluate as score
    from gan.outputs.evaluate import write_report

    result = score(
        checkpoint,
        data=data,
        limit=limit,
        num_samples=num_samples,
        metrics=metrics,
        features=features,
        features_weights=features_weights,
        batch_size=batch_size,
        seed=seed,
        device=device,
        report=False,  # written below, to print where
    )
    _print_scores(result, write_report(Path(checkpoint), result))


def _print_scores(result: dict, report: Path | None) -> None:
    """The scores a line each, what they were measured on, the report, then all as JSON."""
    shown = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "intra_fid")
    for key, value in result.items():
        if key in shown or key.startswith("nn_"):
            typer.echo(f"{key:>10}  {value:.6g}")
    for name, value in result.get("intra_fid_per_class", {}).items():
        typer.echo(f"{'fid of':>10}  {value:.6g}  class {name}")
    typer.echo(
        f"{'features':>10}  {result['features']} ({result['num_samples']} generated, "
        f"{result['num_real']} real)"
    )
    if report is not None:
        typer.echo(f"{'report':>10}  {report}")
    typer.echo(json.dumps(result))


@user_errors
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint, e.g. checkpoints/last.pt.")],
    format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="safetensors: the weights; exported: a torch.export program (.pt2); "
            "onnx: ONNX for onnxruntime and other runtimes.",
        ),
    ] = ExportFormat.safetensors,
    out: Annotated[
        Path | None,
        typer.Option(help="File to write (default: checkpoints/<run>/generator-<step>.<ext>)."),
    ] = None,
) -> None:
    """Export the generator (its moving average) alone, with a JSON of shapes, value range,
    classes and training summary beside it."""
    from gan.outputs.export import export as write

    path, meta = write(checkpoint, fmt=format.value, out=out)
    typer.echo(f"{path}\n{meta}")


@user_errors
def plot_history(
    run: Annotated[
        Path | None,
        typer.Argument(help="A run folder under logs/ or its history.jsonl (default: newest)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="PNG to write (default: the run's assets/<run>/losses.png).")
    ] = None,
    smooth: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Moving average over N logged points.")
    ] = 1,
) -> None:
    """Plot D and G loss against step from a run's history.jsonl."""
    from gan.outputs import plotting

    history = plotting.find_history(run, workdir=Path("."))
    out = out or plotting.default_out(history)
    typer.echo(str(plotting.plot_history(history, out=out, smoothing=smooth)))
