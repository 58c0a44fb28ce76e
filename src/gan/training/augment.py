"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) with an adaptive strength
(StyleGAN2-ADA, Karras et al. 2020), on the training device without host syncs.

Every transform is applied to each image with probability p, as ADA does; p = 1 is
DiffAugment as published. The transforms are differentiable in the images, so G learns
through them. Randomness comes from the augmenter's own seeded generator, drawn for the
global batch and sliced per process like the latents, so runs and resumes are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from gan import distributed
from gan.config import catalog

Draw = Callable[..., torch.Tensor]  # draw(*shape) -> uniform [0, 1) on the device


def brightness(x: torch.Tensor, draw: Draw) -> torch.Tensor:
    return x + (draw(len(x), 1, 1, 1) - 0.5)


def saturation(x: torch.Tensor, draw: Draw) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (draw(len(x), 1, 1, 1) * 2) + mean


def contrast(x: torch.Tensor, draw: Draw) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (draw(len(x), 1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, draw: Draw, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size, filling with zeros."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = (draw(n, 1, 1) * (2 * sy + 1)).floor().long() - sy
    dx = (draw(n, 1, 1) * (2 * sx + 1)).floor().long() - sx
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # the zero border fills the gap
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, draw: Draw, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of `ratio` of the image's size at a random place in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = (draw(n, 1, 1) * (h + 1 - ch % 2)).floor() - ch // 2
    left = (draw(n, 1, 1) * (w + 1 - cw % 2)).floor() - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


# The transforms of each family; the names and summaries are the catalog's
# (`gan.config.catalog.AUGMENTS`, the one list of them).
COLOR = (brightness, saturation, contrast)
TRANSLATION = (translation,)
CUTOUT = (cutout,)


def policy(name: str) -> tuple[Callable[..., torch.Tensor], ...]:
    return catalog.AUGMENTS[name].load()


class Augmenter:
    """Applies a policy with strength p; with `adaptive`, p follows D's overfitting.

    ADA's signal r = E[sign(D(x) - threshold)] over the reals D saw since the last update
    (all-reduced across processes) is compared with `target` every `interval` steps; p moves
    by images-since-update / `ramp_images` (the schedule's), so it can go from 0 to 1 in
    `ramp_images`.
    """

    interval = 4  # steps between adjustments, as in StyleGAN2-ADA

    def __init__(
        self,
        policy: tuple[str, ...],
        p: float | str,
        device: torch.device,
        seed: int,
        target: float = 0.6,
        dist: distributed.DistInfo | None = None,
    ) -> None:
        self.policy, self.device, self.target = policy, device, target
        self.adaptive = p == "auto" and bool(policy)  # no policy: nothing to adapt
        self.dist = dist or distributed.DistInfo()
        fixed = 0.0 if p == "auto" else float(p)
        self.p = torch.tensor(0.0 if self.adaptive else fixed, device=device)
        self.off = not self.adaptive and fixed == 0  # a fixed p of 0: nothing to draw
        self.rng = torch.Generator(device=device).manual_seed(seed + 4)
        self._signs = torch.zeros((), device=device)
        self._seen = 0

    def _draw(self, *shape: int) -> torch.Tensor:
        """Uniform numbers for this process's slice of the global batch."""
        world, rank = self.dist.world_size, self.dist.rank
        u = torch.rand(shape[0] * world, *shape[1:], device=self.device, generator=self.rng)
        return u[rank * shape[0] : (rank + 1) * shape[0]] if world > 1 else u

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.policy or self.off:
            return x
        for name in self.policy:
            for transform in policy(name):
                apply = (self._draw(len(x), 1, 1, 1) < self.p).to(x.dtype)
                x = x + apply * (transform(x, self._draw) - x)
        return x

    def observe(self, real_signs: torch.Tensor, count: int) -> None:
        """Add the summed signs of D's outputs on `count` reals (device tensor, no sync)."""
        if self.adaptive:
            self._signs = self._signs + real_signs
            self._seen += count

    def adjust(self, step: int, ramp_images: float = 1.0) -> None:
        """Every `interval` steps: move p towards keeping r at the target, by at most the
        images seen since over `ramp_images`."""
        if not self.adaptive or step % self.interval or self._seen == 0:
            return
        signs = distributed.total(self._signs, self.dist)
        seen = self._seen * self.dist.world_size
        r = signs / seen
        self.p = (self.p + torch.sign(r - self.target) * (seen / ramp_images)).clamp(0, 1)
        self._signs, self._seen = torch.zeros((), device=self.device), 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "augment_p": self.p.detach().cpu(),
            "augment_rng": self.rng.get_state(),
            "ada_signs": self._signs.detach().cpu(),
            "ada_seen": self._seen,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The generator and, when adapting, p and its signal: a resumed run adapts as the
        run it continues did (at the ramp its schedule keeps). A fixed p given now wins over
        the saved one."""
        if state.get("augment_p") is None:  # a checkpoint from before augmentation
            return
        self.rng.set_state(state["augment_rng"])
        if self.adaptive:
            self.p = state["augment_p"].to(self.device)
            self._signs = state["ada_signs"].to(self.device)
            self._seen = int(state["ada_seen"])


POLICIES = {name: policy(name) for name in catalog.AUGMENTS}  # (this module is loaded now)
