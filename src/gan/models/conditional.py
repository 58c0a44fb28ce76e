"""Class conditioning for any catalog model: class-conditional BatchNorm in G and a
projection discriminator (Miyato & Koyama 2018), wrapped around the unconditional pair.

G's BatchNorm layers become `ClassBatchNorm` (the shared normalisation, then a per-class
scale and shift that start at the identity); a G without BatchNorm gets a per-class
embedding added to its latent instead. D's logit gains the inner product of a per-class
embedding with D's penultimate features. Both start as the unconditional model.
"""

from __future__ import annotations

import torch
from torch import nn

from gan.errors import GanError

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


class ClassBatchNorm(nn.Module):
    """BatchNorm, then a scale 1 + gain[y] and a shift shift[y] per class (de Vries et al.
    2017; the G of Miyato & Koyama 2018). Gains and shifts start at zero."""

    def __init__(self, norm: nn.Module, classes: int) -> None:
        super().__init__()
        self.norm = norm
        self.gain = nn.Embedding(classes, norm.num_features)
        self.shift = nn.Embedding(classes, norm.num_features)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shape = (
            x.shape[0],
            -1,
            *([1] * (x.ndim - 2)),
        )  # shape[0]: a symbolic batch for torch.export
        return self.norm(x) * (1 + self.gain(y).view(shape)) + self.shift(y).view(shape)


class ConditionalGenerator(nn.Module):
    """G(z, y) from an unconditional G whose `net` is an nn.Sequential run on z.

    `class_weights` (a buffer, so checkpoints keep it) is how often each class occurs in
    the training data: samples drawn without labels follow it."""

    def __init__(self, generator: nn.Module, classes: int) -> None:
        super().__init__()
        net = getattr(generator, "net", None)
        if not isinstance(net, nn.Sequential):
            raise GanError(f"{type(generator).__name__} cannot be conditioned on labels.")
        layers = [ClassBatchNorm(m, classes) if isinstance(m, _NORMS) else m for m in net]
        generator.net = nn.Sequential(*layers)
        self.generator = generator
        self.latent_shape = tuple(generator.latent_shape)
        self.num_classes = classes
        self.embed = None
        if not any(isinstance(m, ClassBatchNorm) for m in layers):
            self.embed = nn.Embedding(classes, self.latent_shape[0])
            nn.init.normal_(self.embed.weight)
        self.register_buffer("class_weights", torch.ones(classes))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.embed is not None:
            z = z + self.embed(y).view(y.shape[0], -1, *([1] * (z.ndim - 2)))

        def apply(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
            return layer(x, y) if isinstance(layer, ClassBatchNorm) else layer(x)

        staged = getattr(self.generator, "staged", None)  # a growing G (--grow)
        if staged is not None:
            return staged(z, apply)
        for layer in self.generator.net:
            z = apply(layer, z)
        return z


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = head(h) + <embed[y], h>, h = D's penultimate features (`features(x)`,
    then its `head`: a dropout, if D has one there, and the one-logit linear layer).

    The class term reads h before that dropout: the class evidence is not thinned at
    random (measured on MNIST: fewer digits of the wrong class, docs/datasets.md)."""

    def __init__(self, discriminator: nn.Module, classes: int) -> None:
        super().__init__()
        head = getattr(discriminator, "head", None)
        linear = [m for m in head.modules() if isinstance(m, nn.Linear)] if head else []
        if not linear or not hasattr(discriminator, "features"):
            raise GanError(f"{type(discriminator).__name__} cannot be conditioned on labels.")
        self.discriminator = discriminator
        self.batch_independent = getattr(discriminator, "batch_independent", False)
        self.embed = nn.Embedding(classes, linear[-1].in_features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.discriminator.features(x)
        return self.discriminator.head(h).squeeze(1) + (self.embed(y) * h).sum(1)


def conditional_pair(
    generator: nn.Module, discriminator: nn.Module, classes: int
) -> tuple[nn.Module, nn.Module]:
    return ConditionalGenerator(generator, classes), ProjectionDiscriminator(discriminator, classes)


def is_conditional(generator: nn.Module) -> bool:
    return getattr(generator, "num_classes", 0) > 0
