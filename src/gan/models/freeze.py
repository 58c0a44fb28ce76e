"""FreezeD (Mo et al. 2020): D's first blocks get no gradient while the rest fine-tune.

A block of D is one of its layers with weights, in the order D applies them, with the
normalisation after it (dcgan's BatchNorm joins the convolution before it): for each
model, `gan.config.catalog.D_BLOCKS` says what they are. D's last block, its output
layer, always trains, as do the layers a wrapper adds around D (a conditional model's
class embedding, --grow's from-RGB layers).

Frozen weights have `requires_grad` False: their gradients stay None, so Adam (fused or
not) skips them and keeps no state for them, and a checkpoint restores the run exactly.
What is not a weight still changes in train mode: a frozen BatchNorm's running statistics
(D is never run in eval mode while training, so they are never used) and spectral norm's
power-iteration vectors, which go on estimating the largest singular value of the frozen
weight (they converge to it; the normalised weight stays that weight over that value).
"""

from __future__ import annotations

from torch import nn

from gan.config.catalog import freeze_d_beyond
from gan.errors import GanError

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)


def discriminator_blocks(discriminator: nn.Module) -> list[list[nn.Parameter]]:
    """The parameters of each of D's own blocks, first block first (see the module's doc)."""
    core = discriminator
    while isinstance(getattr(core, "discriminator", None), nn.Module):  # conditional, --grow
        core = core.discriminator
    net = getattr(core, "net", None)
    layers = list(net) if isinstance(net, nn.Sequential) else list(core.children())
    blocks: list[list[nn.Parameter]] = []
    for layer in layers:
        params = list(layer.parameters())
        if not params:
            continue
        if isinstance(layer, _NORMS) and blocks:
            blocks[-1] += params
        else:
            blocks.append(params)
    return blocks


def check_freeze(name: str, discriminator: nn.Module, count: int) -> int:
    """The blocks D has; one sentence when --freeze-d would freeze its output layer too."""
    blocks = len(discriminator_blocks(discriminator))
    if count >= blocks:
        raise GanError(freeze_d_beyond(name, count, blocks))
    return blocks


def freeze(name: str, discriminator: nn.Module, count: int) -> int:
    """Freeze D's first `count` blocks in place; the number of tensors frozen."""
    check_freeze(name, discriminator, count)
    frozen = [p for block in discriminator_blocks(discriminator)[:count] for p in block]
    for param in frozen:
        param.requires_grad_(False)
    return len(frozen)
