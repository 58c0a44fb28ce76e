"""Scoring a generator: features of real and generated images, FID, KID, precision and
recall, the copy check (`Evaluator`, used by training and by `gan.outputs.evaluate`)."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from pathlib import Path
from typing import Any

import torch
from loguru import logger
from torch import nn

from gan.atomic import atomic_file
from gan.errors import GanError
from gan.metrics import ALL_METRICS, FEATURES, default_features, scores
from gan.metrics.copies import copy_check
from gan.metrics.features import INCEPTION_ENV, file_digest, inception_path
from gan.models.generate import generate

__all__ = ["Evaluator", "INCEPTION_ENV", "compute", "parse_metrics"]


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


def _observing(device: torch.device) -> contextlib.AbstractContextManager:
    """The run's random streams as they were afterwards: building a feature network (its
    layers' default initialisation) and scoring must not change what a run trains, so
    `--eval-every` observes a run without moving its dropout masks or latents."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


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
        with _observing(device):
            self.net = FEATURES.get(self.name)(weights).to(device)
            self.fid_name = feature_id(self.name, weights)
            self.images = images.cpu()  # uint8, for the copy check
            self.real = real_features(self.images, self.net, self.fid_name, device, batch)
        self.device, self.batch, self.seed, self.num = device, batch, seed, num_samples

    def held_bytes(self, metrics: tuple[str, ...]) -> int:
        """The memory scoring `metrics` holds at its peak, known before a sample is drawn:
        the samples' features (float32, gathered and joined) and the float64 copies FID and
        KID make of both sets'; for pr, each set's k-NN distance matrix; for nn, the
        samples' pixels (bytes as drawn, joined, then float32) and the reals' in float32
        and float64."""
        count, real, dim = self.num, len(self.images), int(self.real.shape[1])
        need = count * dim * 4 * 2 + (count + real) * dim * 8
        if "pr" in metrics:
            need += max(count, real) ** 2 * 4  # the larger set's distance matrix
        if "nn" in metrics:
            pixels = math.prod(self.images.shape[1:])
            need += count * pixels * (1 + 1 + 4) + real * pixels * (4 + 8)
        return need

    def __call__(self, generator: nn.Module, metrics: tuple[str, ...] = ("fid",)) -> dict[str, Any]:
        pixels: list[torch.Tensor] | None = [] if "nn" in metrics else None
        with _observing(self.device):
            fake = fake_features(
                generator, self.num, self.seed, self.net, self.device, self.batch, pixels
            )
        result = compute(self.real, fake, metrics)
        if pixels is not None:
            fakes = torch.cat(pixels).float() / 255
            result |= copy_check(self.images.float() / 255, fakes, self.real, fake)
        return result
