"""GAN losses and gradient penalties: pure functions on D's outputs, and the losses by name.

What D outputs depends on the loss: logits for `ns` (BCEWithLogits, the numerically safe
form of sigmoid + BCE) and `hinge`; unbounded scores for `lsgan` (trained towards 1 for
reals, 0 for fakes) and `wgan-gp` (a critic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gan.config import catalog
from gan.errors import GanError


def d_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss: real -> 1, fake -> 0."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss -log D(G(z)) (Goodfellow et al. 2014, the non-saturating form)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def d_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; SAGAN, BigGAN)."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def g_hinge(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def d_lsgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least squares (Mao et al. 2017): D's scores pulled to 1 for reals and 0 for fakes."""
    return 0.5 * ((real - 1).square().mean() + fake.square().mean())


def g_lsgan(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake - 1).square().mean()


def d_wasserstein(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The critic's side of the Wasserstein estimate E[D(x)] - E[D(G(z))], negated."""
    return fake.mean() - real.mean()


def g_wasserstein(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def d_relativistic(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The relativistic pairing loss (RpGAN; R3GAN, Huang et al. 2024): each real is
    compared with the fake beside it, E[softplus(D(G(z)) - D(x))]."""
    return F.softplus(fake - real).mean()


def g_relativistic(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """G's side: its fakes made to score above the reals they are paired with."""
    return F.softplus(real - fake).mean()


def gradient_norms_squared(
    outputs: torch.Tensor, inputs: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    """||dD(x)/dx||^2 per sample, kept in the graph (create_graph) so that a penalty built
    on it trains D in the same backward as its loss. With fp16's loss `scale`, the outputs
    are scaled before the gradient and the gradient unscaled after (AMP's recipe)."""
    total = outputs.sum() if scale is None else outputs.sum() * scale
    (grad,) = torch.autograd.grad(total, inputs, create_graph=True)
    grad = grad.float() if scale is None else grad.float() / scale
    return grad.square().flatten(1).sum(1)


def r1_penalty(
    real_out: torch.Tensor, reals: torch.Tensor, gamma: float, scale: float | None = None
) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): gamma / 2 * E[||grad D(x)||^2] on reals."""
    return 0.5 * gamma * gradient_norms_squared(real_out, reals, scale).mean()


def gradient_penalty(
    mixed_out: torch.Tensor, mixed: torch.Tensor, weight: float, scale: float | None = None
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)|| - 1)^2] on points
    x_hat between reals and fakes."""
    norms = gradient_norms_squared(mixed_out, mixed, scale).add(1e-12).sqrt()
    return weight * (norms - 1).square().mean()


@dataclass(frozen=True)
class Loss:
    """A D/G loss pair and what D's outputs mean under it."""

    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g: Callable[..., torch.Tensor]  # g(fake), or g(fake, real) for a relativistic loss
    outputs: str  # "logits" or "scores"
    shown: str  # what the D(x)/D(G(z)) panels show: "probability" or "score"
    midpoint: float | None  # the output between "real" and "fake"; None: relative (WGAN)
    gradient_penalty: bool = False  # the loss needs WGAN-GP's penalty
    # G's loss compares its fakes with D's scores of the reals (`g(fake, real)`), and
    # --r1-gamma penalises D's gradient on the fakes too (R2): R3GAN's recipe.
    relativistic: bool = False

    def panel(self, out: torch.Tensor) -> torch.Tensor:
        """The mean of D's outputs as the panels show it."""
        return torch.sigmoid(out).mean() if self.shown == "probability" else out.mean()

    def real_signs(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """sign(D(x) - threshold) summed over the reals: ADA's overfitting signal. The
        threshold is the loss's midpoint, or for a critic the mean score of the fakes."""
        threshold = self.midpoint if self.midpoint is not None else fake.detach().mean()
        return torch.sign(real.detach() - threshold).sum()


NS = Loss(d_bce, g_nonsaturating, "logits", "probability", 0.0)
HINGE = Loss(d_hinge, g_hinge, "logits", "score", 0.0)
LSGAN = Loss(d_lsgan, g_lsgan, "scores", "score", 0.5)
WGAN_GP = Loss(d_wasserstein, g_wasserstein, "scores", "score", None, gradient_penalty=True)
RPGAN = Loss(d_relativistic, g_relativistic, "logits", "score", None, relativistic=True)


class _ByName:
    """The losses by the names the catalog gives them (`gan.config.catalog.LOSSES`, the
    one list of names and summaries)."""

    def get(self, name: str) -> Loss:
        entry = catalog.LOSSES.get(name)
        if entry is None:
            raise GanError(f"Unknown loss {name!r}; choose one of: {', '.join(catalog.LOSSES)}.")
        return entry.load()

    def names(self) -> list[str]:
        return sorted(catalog.LOSSES)


LOSSES = _ByName()
