"""FID, KID, precision/recall, density/coverage and intra-class FID on feature matrices
(N x D).

FID and KID are torchmetrics' own implementations, fed the features we extract (an
identity "feature network"), so the real-data side can be cached. Precision/recall is
Kynkäänniemi et al. 2019 and density/coverage Naeem et al. 2020 (both on k-NN balls),
which torchmetrics does not provide; the distance matrices are computed a block of rows
at a time, so none is ever held whole.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from gan.errors import GanError


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


CHUNK = 1024  # rows of a distance matrix computed at once
PR_K, DC_K = 3, 5  # the k of each paper (and of its reference implementation)


def _radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour within the same set."""
    if len(features) <= k:
        raise GanError(
            f"k-nearest-neighbour metrics (k = {k}) need more than {k} images on each side, "
            f"not {len(features)}; give more images or leave out pr and dc."
        )
    out = []
    for rows in features.split(CHUNK):  # +1: the point itself is at distance 0
        out.append(torch.cdist(rows, features).kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


def _coverage(points: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor) -> float:
    """Fraction of points inside at least one k-NN ball of the manifold."""
    inside = 0
    for chunk in points.split(CHUNK):
        inside += int((torch.cdist(chunk, manifold) <= radii[None, :]).any(dim=1).sum())
    return inside / max(1, len(points))


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = PR_K) -> tuple[float, float]:
    """Precision: fakes inside the real manifold; recall: reals inside the fake manifold."""
    real, fake = real.float(), fake.float()
    precision = _coverage(fake, real, _radii(real, k))
    recall = _coverage(real, fake, _radii(fake, k))
    return precision, recall


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = DC_K) -> tuple[float, float]:
    """Naeem et al. 2020, as their reference implementation (clovaai/generative-evaluation-
    prdc) defines it, with B(X_i) the ball around real i out to its k-th nearest real
    neighbour (a fake is inside when strictly nearer than that): density = (1/kM) * the
    number of (real i, fake j) pairs with fake j in B(X_i), over the M fakes; coverage =
    the share of reals whose ball holds at least one fake. Only the reals' neighbourhoods
    are used, so an outlier among the fakes cannot inflate them (as it can recall)."""
    real, fake = real.float(), fake.float()
    radii = _radii(real, k)
    pairs, covered = 0, []
    for start in range(0, len(real), CHUNK):
        # A row per real, as its radius was computed: a fake equal to a real is then
        # measured exactly as that real was (cdist is not bitwise symmetric).
        inside = torch.cdist(real[start : start + CHUNK], fake) < radii[start : start + CHUNK, None]
        pairs += int(inside.sum())
        covered.append(inside.any(dim=1))
    return pairs / (k * len(fake)), float(torch.cat(covered).double().mean())


def intra_fid(
    real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor
) -> dict[int, float]:
    """FID of each class's fakes against that class's reals (a class index with fewer than
    two of either is left out: it has no covariance)."""
    scores = {}
    for index in sorted(set(real_labels.tolist()) & set(fake_labels.tolist())):
        ours, theirs = real[real_labels == index], fake[fake_labels == index]
        if min(len(ours), len(theirs)) >= 2:
            scores[int(index)] = fid(ours, theirs)
    return scores
