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


def _radii(features: torch.Tensor, *ks: int, side: str = "real") -> list[torch.Tensor]:
    """For each k, the distance from each point to its k-th nearest neighbour within the
    same set (one pass over the distances, a block of rows at a time)."""
    if len(features) <= max(ks):
        more = (
            "a larger --num-samples"
            if side == "generated"
            else "more real images (--data, --limit)"
        )
        raise GanError(
            f"k-nearest-neighbour metrics (k = {max(ks)}) need more than {max(ks)} {side} "
            f"images, not {len(features)}; give {more}, or leave out pr and dc."
        )
    out = []
    for rows in features.split(CHUNK):  # +1: the point itself is at distance 0
        near = torch.cdist(rows, features).topk(max(ks) + 1, dim=1, largest=False).values
        out.append(near[:, list(ks)])
    return list(torch.cat(out).T)


def knn_scores(
    real: torch.Tensor,
    fake: torch.Tensor,
    metrics: tuple[str, ...],
    pr_k: int = PR_K,
    dc_k: int = DC_K,
) -> dict[str, float]:
    """Precision and recall (Kynkäänniemi et al. 2019, k = 3; inside a ball: not farther
    than its radius) with "pr" in `metrics`, density and coverage (Naeem et al. 2020,
    k = 5; inside: strictly nearer, as their reference implementation,
    clovaai/generative-evaluation-prdc) with "dc", from one pass over the real-to-fake
    distances, a block of reals at a time.

    With B_k(X_i) the ball around real i out to its k-th nearest other real: precision is
    the share of fakes in some B_pr_k(X_i); recall the share of reals in some fake's ball
    out to that fake's pr_k-th nearest other fake; density = 1/(kM) * the number of (real
    i, fake j) pairs with fake j in B_dc_k(X_i), over the M fakes; coverage the share of
    reals whose B_dc_k holds a fake. Density and coverage use only the reals'
    neighbourhoods, so a stray fake cannot inflate them (it inflates recall: its own ball
    is huge)."""
    real, fake = real.float(), fake.float()
    pr, dc = "pr" in metrics, "dc" in metrics
    precise, recalled, pairs, covered = torch.zeros(len(fake), dtype=torch.bool), [], 0, []
    ks = [k for k, wanted in ((pr_k, pr), (dc_k, dc)) if wanted]
    if not ks:
        return {}
    radii = dict(zip(ks, _radii(real, *ks), strict=True))
    fake_pr = _radii(fake, pr_k, side="generated")[0] if pr else None
    for start in range(0, len(real), CHUNK):
        # A row per real, as its radius was computed: a fake equal to a real is measured
        # exactly as that real was (cdist is not bitwise symmetric).
        d = torch.cdist(real[start : start + CHUNK], fake)
        if pr:
            precise |= (d <= radii[pr_k][start : start + CHUNK, None]).any(dim=0)
            recalled.append((d <= fake_pr[None, :]).any(dim=1))
        if dc:
            inside = d < radii[dc_k][start : start + CHUNK, None]
            pairs += int(inside.sum())
            covered.append(inside.any(dim=1))
    result = {}
    if pr:
        result["precision"] = float(precise.double().mean())
        result["recall"] = float(torch.cat(recalled).double().mean())
    if dc:
        result["density"] = pairs / (dc_k * len(fake))
        result["coverage"] = float(torch.cat(covered).double().mean())
        result["dc_k"] = dc_k
    return result


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = PR_K) -> tuple[float, float]:
    """Precision: fakes inside the real manifold; recall: reals inside the fake manifold."""
    scores = knn_scores(real, fake, ("pr",), pr_k=k)
    return scores["precision"], scores["recall"]


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = DC_K) -> tuple[float, float]:
    """Density and coverage (`knn_scores`)."""
    scores = knn_scores(real, fake, ("dc",), dc_k=k)
    return scores["density"], scores["coverage"]


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
