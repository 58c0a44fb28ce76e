"""FID, KID and precision/recall on feature matrices (N x D).

FID and KID are torchmetrics' own implementations, fed the features we extract (an
identity "feature network"), so the real-data side can be cached. Precision/recall is
Kynkäänniemi et al. 2019 (k-NN manifolds), which torchmetrics does not provide.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


class _Given(nn.Module):
    """Identity: the metric receives features, not images."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the two feature sets."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(
        feature=_Given(real.shape[1]), normalize=True, sync_on_compute=False
    )  # only rank 0 evaluates: no collective
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return max(0.0, float(metric.compute()))


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 50) -> tuple[float, float]:
    """Unbiased polynomial-kernel MMD^2: mean and standard deviation over subsets."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(1000, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features": we pass features
        metric = KernelInceptionDistance(
            feature=_Given(real.shape[1]),
            subsets=subsets,
            subset_size=size,
            normalize=True,
            sync_on_compute=False,
        )
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    mean, std = metric.compute()
    return float(mean), float(std)


def _radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour within the same set."""
    dist = torch.cdist(features, features)
    return dist.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0


def _coverage(points: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor) -> float:
    """Fraction of points inside at least one k-NN ball of the manifold."""
    inside = 0
    for chunk in points.split(1024):
        inside += int((torch.cdist(chunk, manifold) <= radii[None, :]).any(dim=1).sum())
    return inside / max(1, len(points))


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Precision: fakes inside the real manifold; recall: reals inside the fake manifold."""
    real, fake = real.float(), fake.float()
    precision = _coverage(fake, real, _radii(real, k))
    recall = _coverage(real, fake, _radii(fake, k))
    return precision, recall
