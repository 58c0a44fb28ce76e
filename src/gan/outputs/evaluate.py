"""`gan evaluate`: a checkpoint's generator scored against its dataset (or --data), and
the report written into its run's logs.

A report is named by what it measured, so one of other data, features or sample count is
never replaced: `logs/<run>/eval-<step>-<features>-<num_samples>-<data>.json`, e.g.
`eval-0001200-mnist-lenet-10000-3fa2c1d0.json`, where `<step>` has 7 digits (more past
9,999,999), `<features>` is the report's `features` (the feature space: `mnist-lenet`,
`random-conv`, `inception-<weights digest>`) and `<data>` the first 8 hex digits of its
`data_sha256` (of the real images, as scored); a `--seed` other than the default adds
`-s<seed>` (`...-3fa2c1d0-s7.json`), so the samples of another seed never replace them. A
report of the same name is the same measurement made again: it is updated, keeping the
metrics only the earlier one had. Beside a checkpoint kept outside a workdir:
`<name>.eval-<features>-<num_samples>-<data>[-s<seed>].json`. Earlier gans wrote
`eval-<step>.json`. A run folder that is a link or leads outside its workdir gets no
report (a warning says so; the result is printed all the same).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan.atomic import atomic_write, read_regular
from gan.config import FIELDS, Config, DataConfig
from gan.config.tracking import redact
from gan.data import ImageData, load_dataset
from gan.devices import release_cached_memory, resolve_device
from gan.errors import GanError
from gan.metrics import METRICS
from gan.metrics.evaluate import Evaluator, parse_metrics
from gan.outputs import BATCH_SIZE, METRICS_TEXT, NUM_SAMPLES, SEED
from gan.outputs.generator import generator_from_checkpoint
from gan.runs.folders import run_paths_for
from gan.runs.guard import inside

MAX_REPORT_BYTES = 1 << 20  # a report is about 1 KiB
UNCONDITIONAL = (
    "--metrics ifid (intra-class FID) needs a conditional checkpoint; this one was trained "
    "without classes."
)


def report_path(checkpoint: Path, result: dict[str, Any]) -> Path | None:
    """logs/<run>/eval-<step>-<what>.json of the checkpoint's run (so it outlives last.pt
    being replaced by a newer run), or `<name>.eval-<what>.json` beside a checkpoint kept
    elsewhere; <what> is the features, the sample count, the data and a seed other than
    the default (module docstring). None where logs/<run> is a link or leads outside the
    workdir: no report is written through it."""
    features = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(result["features"]))[:80]
    what = f"{features}-{int(result['num_samples'])}-{str(result['data_sha256'])[:8]}"
    if int(result.get("seed", SEED)) != SEED:
        what += f"-s{int(result['seed'])}"
    paths = run_paths_for(checkpoint, {"run_name": result.get("run")})
    if paths is not None:
        if os.path.lexists(paths.logs) and not inside(paths.workdir, paths.logs):
            return None
        if paths.logs.is_dir():
            return paths.logs / f"eval-{int(result['step']):07d}-{what}.json"
        if not inside(paths.workdir, checkpoint.parent):
            return None
    return checkpoint.with_name(f"{checkpoint.stem}.eval-{what}.json")


def write_report(checkpoint: Path, result: dict[str, Any]) -> Path | None:
    path = report_path(checkpoint, result)
    if path is None:
        logger.warning(
            "The run folder of {} is a link or leads outside its workdir, so no report was "
            "written into it; the result is the JSON printed.",
            checkpoint,
        )
        return None
    try:
        atomic_write(path, json.dumps(_with_earlier(path, result), indent=2) + "\n")
    except OSError as exc:
        logger.warning("Could not write {} ({})", path, exc)
        return None
    return path


def _with_earlier(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """The result, with the metrics an earlier report of the same measurement (same name,
    same seed: the same samples) had and this one did not compute (--metrics nn after
    fid,kid,pr keeps the FID)."""
    try:  # no link followed, no FIFO waited on, a bounded size
        earlier = json.loads(read_regular(path, MAX_REPORT_BYTES).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return result
    same = ("step", "features", "num_samples", "data_sha256", "seed")
    if not isinstance(earlier, dict) or any(earlier.get(k) != result.get(k) for k in same):
        return result
    return {**earlier, **result}


def reals_limit(text: str | int | None, saved: int | None) -> int | None:
    """The --limit of the reals scored against: the run's own (None given), every image of
    the data ("all"), or the first N."""
    if text is None:
        return saved
    if str(text).strip().lower() == "all":
        return None
    field = FIELDS["data.limit"]  # the bounds of training's --limit
    try:
        return field.check(int(str(text).strip()))
    except ValueError:
        raise GanError(
            f"--limit {text!r} is not a number of images; give all, or a number from "
            f"{field.opt.min:,} to {field.opt.max:,}."
        ) from None


def evaluation_data(saved: Config, data: str | None, limit: str | int | None = None) -> DataConfig:
    """The checkpoint's dataset as far as it defines the images (name, size, filters), read
    from --data, else from the dataset's own default place (MNIST in ./data, the bundled
    MRI sample, BPS's public bucket); never from a place the checkpoint names (a `folder`
    at / would walk the disk, an s3:// address would send requests where the file says).
    S3 request, cache and download settings are this machine's defaults. `limit`: see
    `reals_limit` (a run trained on --limit 200 can be scored against all its classes)."""
    fixed = [f for f in FIELDS.values() if f.section == "data" and f.opt.fixed]
    kept = {f.name: saved.get(f.key) for f in fixed}
    if "limit" in kept or limit is not None:
        kept["limit"] = reals_limit(limit, saved.data.limit)
    if data is None and saved.data.source is not None:
        shown = redact(str(saved.data.source))[:200]
        raise GanError(
            f"The checkpoint names the {saved.data.name} data it was trained on ({shown!r}), "
            "and gan evaluate reads no place a checkpoint names; give --data with the images "
            "to score against (for a run of your own, that same place)."
        )
    return DataConfig(**kept, source=data)


def _check_memory(evaluator: Evaluator, metrics: tuple[str, ...]) -> None:
    """Refuse, before a sample is drawn, scoring that would hold more than three quarters
    of the machine's memory (the features, distances and pixels the metrics keep)."""
    from gan.data import limits

    total, need = limits.physical_memory(), evaluator.held_bytes(metrics)
    if total is not None and need > total // 4 * 3:
        raise GanError(
            f"--num-samples {evaluator.num:,} with --metrics {','.join(metrics)} would hold "
            f"{limits.size_text(need)} of features, distances and pixels, more than three "
            f"quarters of this machine's {limits.size_text(total)}; give a smaller "
            "--num-samples (or leave out pr and nn, which hold the most)."
        )


def class_labels(data: ImageData, classes: tuple[str, ...], num_samples: int) -> torch.Tensor:
    """The real images' labels as indices of the checkpoint's `classes`, for intra-class
    FID; one sentence where the checkpoint or the data has no classes, or they differ."""
    if not classes:
        raise GanError(UNCONDITIONAL)
    if data.labels is None:
        raise GanError(
            f"--metrics ifid (intra-class FID) needs labelled data, and the images of "
            f"{data.source} carry no labels (MNIST needs its label file, a folder a "
            "subfolder per class)."
        )
    index = {name: i for i, name in enumerate(classes)}
    unknown = [name for name in data.classes if name not in index]
    if unknown:
        raise GanError(
            f"The data has classes the checkpoint does not know ({', '.join(unknown[:3])}); "
            f"it knows {', '.join(classes[:10])}: give --data with its training images."
        )
    if num_samples < 2 * len(classes):
        raise GanError(
            f"--metrics ifid splits --num-samples among {len(classes)} classes; give at "
            f"least {2 * len(classes)}."
        )
    return torch.tensor([index[name] for name in data.classes])[data.labels]


def evaluate(
    checkpoint: str | Path,
    *,
    data: str | None = None,
    limit: str | int | None = None,
    num_samples: int = NUM_SAMPLES,
    metrics: str | tuple[str, ...] = METRICS_TEXT,
    features: str | None = None,
    features_weights: str | Path | None = None,
    batch_size: int = BATCH_SIZE,
    seed: int = SEED,
    device: str = "auto",
    report: bool = True,
) -> dict[str, Any]:
    """Score a checkpoint (FID, KID, precision/recall, density/coverage; "nn" for the copy
    check, "ifid" for intra-class FID): `gan evaluate`, and `gan.evaluate`. `limit`: the
    reals, as the run trained (None), "all", or the first N. With `report`, also write the
    run's report (`write_report`)."""
    names = parse_metrics(metrics if isinstance(metrics, str) else ",".join(metrics))
    result = evaluate_checkpoint(
        Path(checkpoint),
        data=data,
        limit=limit,
        num_samples=num_samples,
        metrics=names,
        features=features,
        features_weights=str(features_weights) if features_weights else None,
        batch_size=batch_size,
        device=device,
        seed=seed,
    )
    if report:
        write_report(Path(checkpoint), result)
    return result


def evaluate_checkpoint(
    checkpoint: Path,
    *,
    data: str | None = None,
    limit: str | int | None = None,
    num_samples: int = NUM_SAMPLES,
    metrics: tuple[str, ...] = METRICS,
    features: str | None = None,
    features_weights: str | None = None,
    batch_size: int = BATCH_SIZE,
    device: str = "auto",
    seed: int = SEED,
) -> dict[str, Any]:
    """Generate `num_samples` images and score them against the checkpoint's dataset."""
    torch_device = resolve_device(device)
    generator, state = generator_from_checkpoint(checkpoint, torch_device)
    classes = tuple(state["model"].get("classes") or ())
    if "ifid" in metrics and not classes:  # said before the data is read
        raise GanError(UNCONDITIONAL)
    loaded = load_dataset(evaluation_data(Config.from_dict(state["config"]), data, limit))
    images = loaded.images
    if list(images.shape[1:]) != list(state["model"]["image_shape"]):
        raise GanError(
            f"The data has images of {list(images.shape[1:])} but the model makes "
            f"{state['model']['image_shape']}; give --data with the training images."
        )
    if num_samples < 2:
        raise GanError("--num-samples must be at least 2.")
    labels = class_labels(loaded, classes, num_samples) if "ifid" in metrics else None
    evaluator = Evaluator(
        images,
        features,
        features_weights,
        num_samples,
        torch_device,
        batch_size,
        seed,
        labels=labels,
        classes=classes,
    )
    _check_memory(evaluator, metrics)
    result = evaluator(generator, metrics)
    release_cached_memory(torch_device)
    result.update(
        num_samples=num_samples,
        num_real=len(images),
        features=evaluator.fid_name,
        step=int(state["step"]),
        run=state.get("run_name"),
        checkpoint=str(checkpoint),
        data_sha256=hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:16],
        seed=seed,
    )
    return result
