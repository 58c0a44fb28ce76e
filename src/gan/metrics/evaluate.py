"""Scoring a generator: features of real and generated images, FID, KID, precision and
recall, density and coverage, the copy check, intra-class FID (`Evaluator`, used by
training and by `gan.outputs.evaluate`)."""

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
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Features of `num` generated images (the same seed, the same images; image i of
    class `labels[i]` when given); their pixels in [0, 1] go into `pixels` when a list is
    given (the copy check needs them)."""
    out = []
    made = generate(generator, num, seed=seed, labels=labels, batch_size=batch, device=device)
    for fake in made:
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
    if "pr" in metrics or "dc" in metrics:
        result |= scores.knn_scores(real, fake, metrics)
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
        labels: torch.Tensor | None = None,
        classes: tuple[str, ...] = (),
    ) -> None:
        """`labels` (one class index of the generator's `classes` per real image) make
        intra-class FID possible."""
        self.labels, self.classes = labels, classes
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
        KID make of both sets'; for pr and dc, a block of rows of a k-NN distance matrix
        (and its comparisons); for nn, the samples' pixels (bytes as drawn, joined, then
        float32) and the reals' in float32 and float64; for ifid, a second set of samples'
        features."""
        count, real, dim = self.num, len(self.images), int(self.real.shape[1])
        need = count * dim * 4 * 2 + (count + real) * dim * 8
        if "pr" in metrics or "dc" in metrics:
            wider = max(count, real)
            need += min(scores.CHUNK, wider) * wider * (4 + 4 + 1)
        if "nn" in metrics:
            pixels = math.prod(self.images.shape[1:])
            need += count * pixels * (1 + 1 + 4) + real * pixels * (4 + 8)
        if "ifid" in metrics:
            need += count * dim * 4 * 2
        return need

    def __call__(self, generator: nn.Module, metrics: tuple[str, ...] = ("fid",)) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if any(m != "ifid" for m in metrics):  # the metrics of one unconditional draw
            pixels: list[torch.Tensor] | None = [] if "nn" in metrics else None
            with _observing(self.device):
                fake = fake_features(
                    generator, self.num, self.seed, self.net, self.device, self.batch, pixels
                )
            result = compute(self.real, fake, metrics)
            if pixels is not None:
                fakes = torch.cat(pixels).float() / 255
                result |= copy_check(self.images.float() / 255, fakes, self.real, fake)
        if "ifid" in metrics:
            result |= self.intra_fid(generator)
        return result

    def intra_fid(self, generator: nn.Module) -> dict[str, Any]:
        """FID of each class: the samples split evenly among the generator's classes, each
        class's against that class's reals; and their mean. A class with fewer than two
        real images is left out (a warning names it)."""
        if self.labels is None or not self.classes:
            raise GanError("Intra-class FID needs a conditional generator and labelled data.")
        per = self.num // len(self.classes)
        labels = torch.arange(len(self.classes)).repeat_interleave(per)
        with _observing(self.device):
            fake = fake_features(
                generator, len(labels), self.seed, self.net, self.device, self.batch, None, labels
            )
        found = scores.intra_fid(self.real, self.labels, fake, labels)
        named = {self.classes[index]: value for index, value in found.items()}
        missing = [name for name in self.classes if name not in named]
        if missing:
            logger.warning(
                "Intra-class FID leaves out {} class(es) with fewer than 2 real images "
                "(first: {}).",
                len(missing),
                ", ".join(missing[:3]),
            )
        if not named:
            raise GanError("No class has 2 real images or more; intra-class FID needs them.")
        return {
            "intra_fid": sum(named.values()) / len(named),
            "intra_fid_per_class": named,
            "intra_fid_samples_per_class": per,
        }
