"""The copy check (`gan evaluate --metrics nn`): do samples sit on top of training images?

For each sample, its distance to the nearest training image is set against that training
image's own distance to its nearest other training image: the local spacing of the data.
A generator that copies scores ratios near 0; one that makes new images scores ratios
near or above 1. Both are computed in pixels and in the feature space of FID.
"""

from __future__ import annotations

from typing import Any

import torch


def nearest(queries: torch.Tensor, keys: torch.Tensor, exclude_self: bool = False, chunk=512):
    """(distance, index) of each query row's nearest key row (Euclidean), in chunks."""
    dists, index, keys = [], [], keys.double()
    key_norms = keys.norm(dim=1)
    for start in range(0, len(queries), chunk):
        rows = queries[start : start + chunk].double()
        d = torch.cdist(rows, keys)
        if exclude_self:  # queries are the keys: neither a row nor its exact duplicates
            # count as its neighbour (the spacing must be > 0); cdist's matrix-product form
            # leaves identical rows a rounding error apart, hence the relative tolerance.
            same = d <= 1e-6 * (rows.norm(dim=1)[:, None] + key_norms[None, :] + 1e-12)
            same[torch.arange(len(d)), torch.arange(start, start + len(d))] = True
            d[same] = float("inf")
        best = d.min(dim=1)
        dists.append(best.values)
        index.append(best.indices)
    return torch.cat(dists), torch.cat(index)


def copy_scores(train: torch.Tensor, samples: torch.Tensor) -> dict[str, float]:
    """The median of d(sample, nearest training image) / that image's nearest-neighbour
    distance, and the share of samples nearer to a training image than the closest pair
    of training images is to each other."""
    train, samples = train.flatten(1).float(), samples.flatten(1).float()
    spacing, _ = nearest(train, train, exclude_self=True)
    spacing = torch.where(torch.isinf(spacing), torch.ones_like(spacing), spacing)  # all equal
    dist, index = nearest(samples, train)
    ratio = dist / spacing[index].clamp_min(1e-12)
    return {
        "median_ratio": float(ratio.median()),
        "share_closer_than_closest_pair": float((dist < spacing.min()).double().mean()),
    }


def copy_check(
    real_pixels: torch.Tensor,
    fake_pixels: torch.Tensor,
    real_features: torch.Tensor,
    fake_features: torch.Tensor,
) -> dict[str, Any]:
    """`copy_scores` in pixels ([0, 1]) and in features, as flat `nn_*` keys."""
    result = {}
    for space, (real, fake) in {
        "pixel": (real_pixels, fake_pixels),
        "feature": (real_features, fake_features),
    }.items():
        for name, value in copy_scores(real, fake).items():
            result[f"nn_{space}_{name}"] = value
    return result
