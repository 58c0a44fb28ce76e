"""The training recipe: the loss, the penalties, augmentation and D steps per G step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from gan import distributed
from gan.training.augment import Augmenter
from gan.training.losses import LOSSES, Loss


@dataclass
class Recipe:
    loss: Loss
    augment: Augmenter
    r1_gamma: float = 0.0  # R1 on (augmented) reals; 0: off
    r1_every: int = 16  # lazy R1: every k steps, with gamma scaled by k (StyleGAN2)
    gp_weight: float = 10.0  # WGAN-GP's penalty, with --loss wgan-gp
    n_critic: int = 1  # D steps per G step
    noise_rng: torch.Generator | None = field(default=None, repr=False)  # GP's mixing weights

    @property
    def penalised(self) -> bool:
        """D's gradient is penalised: it cannot be compiled and needs per-sample outputs."""
        return self.r1_gamma > 0 or self.loss.gradient_penalty

    def r1_due(self, step: int) -> bool:
        return self.r1_gamma > 0 and step % self.r1_every == 0

    def mixing_weights(self, count: int, device: torch.device) -> torch.Tensor:
        """Drawn for the global batch and sliced per process, like the latents."""
        dist = self.augment.dist
        w = torch.rand(count * dist.world_size, 1, 1, 1, device=device, generator=self.noise_rng)
        return w[dist.rank * count : (dist.rank + 1) * count] if dist.world_size > 1 else w

    def state_dict(self) -> dict[str, Any]:
        noise = self.noise_rng.get_state() if self.noise_rng is not None else None
        return {**self.augment.state_dict(), "noise_rng": noise}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.augment.load_state_dict(state)
        if self.noise_rng is not None and state.get("noise_rng") is not None:
            self.noise_rng.set_state(state["noise_rng"])


def build_recipe(
    loss: str = "ns",
    *,
    device: torch.device,
    seed: int = 0,
    augment: tuple[str, ...] = (),
    augment_p: float | str = 0.0,
    ada_target: float = 0.6,
    r1_gamma: float = 0.0,
    r1_every: int = 16,
    gp_weight: float = 10.0,
    n_critic: int = 1,
    dist: distributed.DistInfo | None = None,
) -> Recipe:
    """A recipe whose random draws come from generators seeded by the run's seed."""
    augmenter = Augmenter(augment, augment_p, device, seed, ada_target, dist)
    noise = torch.Generator(device=device).manual_seed(seed + 5)
    return Recipe(LOSSES.get(loss), augmenter, r1_gamma, r1_every, gp_weight, n_critic, noise)
