"""Sample-quality metrics: feature networks registered by name, FID/KID/precision-recall,
density/coverage, intra-class FID."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from gan.metrics import features
from gan.registry import Registry

FEATURES: Registry[Callable[[str | None], nn.Module]] = Registry("feature network")
FEATURES.register("mnist-lenet")(lambda weights: features.load_lenet())
FEATURES.register("random-conv")(lambda weights: features.RandomConv().eval())
FEATURES.register("inception")(features.load_inception)
METRICS = ("fid", "kid", "pr", "dc")  # the default set
# nn: the copy check (gan.metrics.copies); ifid: intra-class FID (a conditional G)
ALL_METRICS = (*METRICS, "nn", "ifid")


def default_features(image_shape: tuple[int, ...]) -> str:
    """mnist-lenet for 28x28 grayscale; a fixed random network for everything else."""
    return "mnist-lenet" if tuple(image_shape) == (1, 28, 28) else "random-conv"
