"""An exponential moving average of G's weights (StyleGAN's G_ema), with no host syncs.

torch's AveragedModel keeps its update count in a device tensor and branches on it in
Python (`if self.n_averaged > 0`), which waits for the GPU twice per step. Here the count
is a Python int, so the update is a handful of multi-tensor kernels queued without waiting.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """An averaged copy of G (weights and BatchNorm statistics), updated after each G step.

    The first update copies; later ones blend with decay min(decay, (1 + n) / (10 + n)),
    a warm-up that keeps short runs from being dominated by the initial weights.
    Integer buffers (BatchNorm's step counters) are copied rather than averaged.
    """

    def __init__(self, generator: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(generator).requires_grad_(False)
        self.decay = decay
        self.n_averaged = 0
        self._pairs: tuple[nn.Module, tuple[list, list], tuple[list, list]] | None = None

    def _grouped(self, generator: nn.Module) -> tuple[tuple[list, list], tuple[list, list]]:
        """(averaged, current) tensor lists, floats and others, built once per generator:
        optimizers and load_state_dict update tensors in place, so the lists stay valid."""
        if self._pairs is None or self._pairs[0] is not generator:
            floats: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
            others: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
            mine = [*self.module.parameters(), *self.module.buffers()]
            theirs = [*generator.parameters(), *generator.buffers()]
            for averaged, current in zip(mine, theirs, strict=True):
                group = floats if averaged.is_floating_point() else others
                group[0].append(averaged)
                group[1].append(current.detach())
            self._pairs = (generator, floats, others)
        return self._pairs[1], self._pairs[2]

    @torch.no_grad()
    def update_parameters(self, generator: nn.Module) -> None:
        floats, others = self._grouped(generator)
        if others[0]:
            torch._foreach_copy_(*others)
        if self.n_averaged == 0:
            torch._foreach_copy_(*floats)
        else:
            n = self.n_averaged
            beta = min(self.decay, (1 + n) / (10 + n))
            torch._foreach_lerp_(*floats, 1.0 - beta)
        self.n_averaged += 1
