"""`gan evaluate` and evaluation during training: features of real and generated images."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from loguru import logger
from torch import nn

from gan.atomic import atomic_file, atomic_write
from gan.errors import GanError
from gan.metrics import ALL_METRICS, FEATURES, METRICS, default_features, scores
from gan.metrics.copies import copy_check
from gan.metrics.features import INCEPTION_ENV, file_digest, inception_path
from gan.models.generate import generate

__all__ = ["Evaluator", "INCEPTION_ENV", "compute", "parse_metrics", "write_report"]


def feature_id(name: str, weights: str | None) -> str:
    """Names the feature space, weights included, for cache keys and reports."""
    if name == "inception":
        return f"inception-{file_digest(inception_path(weights))}"
    return name


def _stats_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gan" / "stats"


@torch.no_grad()
def extract(net: nn.Module, images: torch.Tensor, device: torch.device, batch: int) -> torch.Tensor:
    """Features of images in [0, 1] (N x C x H x W, any device), in batches."""
    out = [net(chunk.to(device).float()).float().cpu() for chunk in images.split(batch)]
    return torch.cat(out)


def real_features(
    images: torch.Tensor, net: nn.Module, fid_name: str, device: torch.device, batch: int
) -> torch.Tensor:
    """Features of the real images (uint8), cached by content hash and feature network."""
    digest = hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:24]
    path = _stats_dir() / f"{fid_name}-{digest}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)["features"]
        except Exception:  # a damaged cache entry is recomputed
            logger.warning("Ignoring a damaged statistics cache file {}", path)
    feats = extract(net, images.float() / 255.0, device, batch)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            torch.save({"features": feats, "num_images": len(images)}, f)
    except OSError as exc:
        logger.warning("Could not cache real-data statistics in {} ({})", path.parent, exc)
    return feats


@torch.no_grad()
def fake_features(
    generator: nn.Module,
    num: int,
    seed: int,
    net: nn.Module,
    device: torch.device,
    batch: int,
    pixels: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Features of `num` generated images (the same seed, the same images); their pixels
    in [0, 1] go into `pixels` when a list is given (the copy check needs them)."""
    out = []
    for fake in generate(generator, num, seed=seed, batch_size=batch, device=device):
        unit = fake.add(1).div(2).clamp(0, 1)
        out.append(net(unit).float().cpu())
        if pixels is not None:
            pixels.append(unit.mul(255).round().byte().cpu())  # as compact as the reals
    return torch.cat(out)


def compute(real: torch.Tensor, fake: torch.Tensor, metrics: tuple[str, ...]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if "fid" in metrics:
        result["fid"] = scores.fid(real, fake)
    if "kid" in metrics:
        result["kid"], result["kid_std"] = scores.kid(real, fake)
    if "pr" in metrics:
        result["precision"], result["recall"] = scores.precision_recall(real, fake)
    return result


def parse_metrics(text: str) -> tuple[str, ...]:
    names = tuple(m.strip().lower() for m in text.split(",") if m.strip())
    unknown = [m for m in names if m not in ALL_METRICS]
    if unknown or not names:
        raise GanError(f"--metrics {text!r} must list some of {', '.join(ALL_METRICS)}.")
    return names


class Evaluator:
    """Scores a generator against fixed real features; used by `--eval-every` in training."""

    def __init__(
        self,
        images: torch.Tensor,
        features: str | None,
        weights: str | None,
        num_samples: int,
        device: torch.device,
        batch: int = 250,
        seed: int = 12345,
    ) -> None:
        self.name = features or default_features(tuple(images.shape[1:]))
        self.net = FEATURES.get(self.name)(weights).to(device)
        self.fid_name = feature_id(self.name, weights)
        self.device, self.batch, self.seed, self.num = device, batch, seed, num_samples
        self.images = images.cpu()  # uint8, for the copy check
        self.real = real_features(self.images, self.net, self.fid_name, device, batch)

    def __call__(self, generator: nn.Module, metrics: tuple[str, ...] = ("fid",)) -> dict[str, Any]:
        pixels: list[torch.Tensor] | None = [] if "nn" in metrics else None
        fake = fake_features(
            generator, self.num, self.seed, self.net, self.device, self.batch, pixels
        )
        result = compute(self.real, fake, metrics)
        if pixels is not None:
            fakes = torch.cat(pixels).float() / 255
            result |= copy_check(self.images.float() / 255, fakes, self.real, fake)
        return result


def report_path(checkpoint: Path, result: dict[str, Any]) -> Path:
    """logs/<run>/eval-<step>.json of the checkpoint's run (so it outlives last.pt being
    replaced by a newer run), or `<name>.eval.json` beside a checkpoint kept elsewhere."""
    from gan.runs.status import run_paths_for

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


def evaluation_data(saved: Any, data: str | None) -> Any:
    """The checkpoint's dataset as far as it defines the images (name, size, filters) and
    where they were read, unless --data says; S3 request, cache and download settings are
    this machine's defaults, never the checkpoint's."""
    from gan.config import FIELDS
    from gan.config.sections import DataConfig

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
    from gan.config import Config
    from gan.data import load_dataset
    from gan.devices import release_cached_memory, resolve_device
    from gan.outputs.sample import load_generator

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
