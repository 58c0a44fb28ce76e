"""An exponential moving average of G's weights (StyleGAN's G_ema), via torch's AveragedModel."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def _ema_fn(decay: float):
    """Multi-tensor EMA with a warm-up, so short runs are not dominated by the initial weights.

    The effective decay is min(decay, (1 + n) / (10 + n)), computed on the device (no sync).
    Integer buffers (BatchNorm's step counters) are copied rather than averaged.
    """

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n) -> None:
        if not averaged[0].is_floating_point():
            torch._foreach_copy_(averaged, current)
            return
        n = torch.as_tensor(n, device=averaged[0].device, dtype=averaged[0].dtype)
        beta = torch.clamp((1 + n) / (10 + n), max=decay)
        torch._foreach_lerp_(averaged, current, 1 - beta)

    return update


def make_ema(generator: nn.Module, decay: float) -> AveragedModel:
    """An averaged copy of G (weights and BatchNorm statistics), updated after each G step."""
    return AveragedModel(generator, multi_avg_fn=_ema_fn(decay), use_buffers=True)
