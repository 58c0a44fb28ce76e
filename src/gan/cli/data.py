"""`gan data info`: what a dataset holds before any training. For BPS it reads meta.csv
alone (no image is downloaded); other datasets are loaded and summarised. `gan data
preview`: a grid of its first images as training sees them, augmented beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gan.cli.options import config_from_command_line, user_errors, with_config_options
from gan.config.sections import SEED_MAX

app = typer.Typer(help="Look at a dataset before training on it.", no_args_is_help=True)


def _info(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="One JSON object instead of a table."),
    **options: Any,
) -> None:
    """Counts of a dataset: for BPS, images per particle x dose x hours and the split
    sizes, from meta.csv alone (no image is downloaded); else the images, their shape and
    classes, and DICOM slices by modality, size and series (this loads the data)."""
    config, _ = config_from_command_line(ctx, options, None)
    config.validate()
    data = config.data
    if data.name == "bps":
        from gan.data.bps import meta_summary

        summary = meta_summary(data)
        typer.echo(json.dumps(summary, indent=2) if json_out else _bps_table(summary))
        return
    from gan.data import load_dataset

    summary = load_dataset(data).summary()
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
        return
    shape = "x".join(map(str, summary["image_shape"]))
    typer.echo(
        f"{summary['name']} from {summary['source']}: {summary['num_images']:,} images "
        f"of {shape} (CxHxW)"
    )
    for name, count in (summary.get("classes") or {}).items():
        typer.echo(f"  class {name}: {count:,}")
    if "dicom" in summary:
        typer.echo(_dicom_table(summary["dicom"]))


info = with_config_options(user_errors(_info), sections=("data",))
app.command("info")(info)


def _preview(
    ctx: typer.Context,
    num: Annotated[int, typer.Option(min=1, max=1024, help="How many images (the first).")] = 64,
    nrow: Annotated[int | None, typer.Option(min=1, max=1024, help="Images per row.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="PNG to write (default: preview-DATASET.png).")
    ] = None,
    augment: Annotated[
        str,
        typer.Option(
            help="A DiffAugment policy as gan train takes it (color, translation, cutout, "
            "joined by commas): the same images augmented, on the right."
        ),
    ] = "none",
    augment_p: Annotated[
        str,
        typer.Option(
            help="The probability of each transform per image, in [0, 1], as a fixed "
            "--augment-p in training."
        ),
    ] = "1",
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Augmentation seed.")] = 0,
    **options: Any,
) -> None:
    """A grid of the dataset's first images as the loader gives them (decoded, resized);
    with --augment, the same images augmented by training's own code beside them. Only
    the images shown are read."""
    from gan.outputs.data_preview import preview

    config, _ = config_from_command_line(ctx, options, None)
    config.validate()
    shown = preview(
        config.data,
        num=num,
        nrow=nrow,
        out=out,
        augment=augment,
        augment_p=augment_p,
        seed=seed,
    )
    typer.echo(f"{shown.path}: {shown.caption}")


app.command("preview")(with_config_options(user_errors(_preview), sections=("data",)))


def _bps_table(s: dict[str, Any]) -> str:
    from gan.runs.overview import text_columns

    lines = [
        f"meta.csv of {s['source']}: {s['rows']:,} rows; {s['matched']:,} match "
        f"{s['filters']} (no image was downloaded)",
        "",
    ]
    header = ("particle", "dose (Gy)", "hours", "images", "train", "val", "test")
    counts = ("images", "train", "val", "test")
    rows = [header]
    for g in s["groups"]:
        place = (g["particle"], f"{g['dose_Gy']:g}", str(g["hours"]))
        rows.append(place + tuple(f"{g[k]:,}" for k in counts))
    total = {"images": sum(s["splits"].values()), **s["splits"]}
    rows.append(("all", "", "") + tuple(f"{total[k]:,}" for k in counts))
    lines += text_columns(rows, right_from=3)
    fractions = ", ".join(f"{f:g}" for f in s["split_fractions"])
    lines.append(f"\nSplits: a hash of each file name with --split-fractions {fractions}.")
    return "\n".join(lines)


def _dicom_table(d: dict[str, Any], most: int = 20) -> str:
    """DICOM slices by modality, size (rows x columns, before resizing) and series."""
    from gan.runs.overview import text_columns

    lines = [f"\nDICOM: {d['slices']:,} slices (one per frame)", ""]
    rows = [("modality", "slices")] + [(m, f"{n:,}") for m, n in d["modalities"].items()]
    lines += text_columns(rows, right_from=1) + [""]
    rows = [("size", "slices")] + [(s, f"{n:,}") for s, n in d["sizes"].items()]
    lines += text_columns(rows, right_from=1) + [""]
    rows = [("series", "description", "modality", "slices")]
    for s in d["series"][:most]:
        rows.append((s["uid"] or "(none)", s["description"], s["modality"], f"{s['slices']:,}"))
    lines += text_columns(rows, right_from=3)
    if len(d["series"]) > most:
        lines.append(f"... and {len(d['series']) - most:,} more series (--json lists them all)")
    return "\n".join(lines)
