"""`gan evaluate`: a checkpoint's generator scored against its dataset (or --data), and
the report written into its run's logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loguru import logger

from gan.atomic import atomic_write
from gan.config import FIELDS, Config, DataConfig
from gan.data import load_dataset
from gan.devices import release_cached_memory, resolve_device
from gan.errors import GanError
from gan.metrics import METRICS
from gan.metrics.evaluate import Evaluator
from gan.outputs.generator import load_generator
from gan.runs.folders import run_paths_for


def report_path(checkpoint: Path, result: dict[str, Any]) -> Path:
    """logs/<run>/eval-<step>.json of the checkpoint's run (so it outlives last.pt being
    replaced by a newer run), or `<name>.eval.json` beside a checkpoint kept elsewhere."""
    paths = run_paths_for(checkpoint, {"run_name": result.get("run")})
    if paths is not None and paths.logs.is_dir():
        return paths.logs / f"eval-{int(result['step']):07d}.json"
    return checkpoint.with_name(checkpoint.stem + ".eval.json")


def write_report(checkpoint: Path, result: dict[str, Any]) -> Path | None:
    path = report_path(checkpoint, result)
    try:
        atomic_write(path, json.dumps(result, indent=2) + "\n")
    except OSError as exc:
        logger.warning("Could not write {} ({})", path, exc)
        return None
    return path


def evaluation_data(saved: Config, data: str | None) -> DataConfig:
    """The checkpoint's dataset as far as it defines the images (name, size, filters) and
    where they were read, unless --data says; S3 request, cache and download settings are
    this machine's defaults, never the checkpoint's."""
    fixed = [f for f in FIELDS.values() if f.section == "data" and f.opt.fixed]
    kept = {f.name: saved.get(f.key) for f in fixed}
    return DataConfig(**kept, source=data if data is not None else saved.data.source)


def evaluate_checkpoint(
    checkpoint: Path,
    data: str | None = None,
    num_samples: int = 10_000,
    metrics: tuple[str, ...] = METRICS,
    features: str | None = None,
    weights: str | None = None,
    batch: int = 250,
    device: str = "auto",
    seed: int = 12345,
) -> dict[str, Any]:
    """Generate `num_samples` images and score them against the checkpoint's dataset."""
    torch_device = resolve_device(device)
    generator, state = load_generator(checkpoint, torch_device)
    images = load_dataset(evaluation_data(Config.from_dict(state["config"]), data)).images
    if list(images.shape[1:]) != list(state["model"]["image_shape"]):
        raise GanError(
            f"The data has images of {list(images.shape[1:])} but the model makes "
            f"{state['model']['image_shape']}; give --data with the training images."
        )
    if num_samples < 2:
        raise GanError("--num-samples must be at least 2.")
    evaluator = Evaluator(images, features, weights, num_samples, torch_device, batch, seed)
    result = evaluator(generator, metrics)
    release_cached_memory(torch_device)
    result.update(
        num_samples=num_samples,
        num_real=len(images),
        features=evaluator.fid_name,
        step=int(state["step"]),
        run=state.get("run_name"),
        checkpoint=str(checkpoint),
    )
    return result
