"""One optimisation step: D's pass, G's pass, gradient accumulation, the EMA update."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from gan import losses
from gan.train.runtime import Runtime


@dataclass
class StepStats:
    """Per-step numbers kept as device tensors, so a step never waits for the GPU."""

    d_loss: torch.Tensor
    g_loss: torch.Tensor
    d_real: torch.Tensor  # mean D(x) on reals, as a probability
    d_fake: torch.Tensor  # mean D(G(z)) before the D update


def _sync_unless_last(module: nn.Module, index: int, count: int):
    """DDP's no_sync() for all but the last micro-batch: one all-reduce per step."""
    if index < count - 1 and hasattr(module, "no_sync"):
        return module.no_sync()
    return contextlib.nullcontext()


def d_backward(
    rt: Runtime, reals: list[torch.Tensor], latents: list[torch.Tensor], keep_fakes: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Accumulate D's gradient over micro-batches (reals -> 1, fakes -> 0), each loss / K."""
    k = len(reals)
    total = real_p = fake_p = torch.zeros((), device=rt.device)
    fakes = []
    for i, (real, z) in enumerate(zip(reals, latents, strict=True)):
        # With one micro-batch G's graph is kept for its own update; with K it is
        # rebuilt later so that memory stays at one micro-batch's worth.
        with torch.set_grad_enabled(keep_fakes), rt.autocast():
            fake = rt.G_train(z)
        with _sync_unless_last(rt.D_train, i, k):
            with rt.autocast():
                if rt.joint_d:  # one pass over reals and fakes: same losses, half the calls
                    logits = rt.D_train(torch.cat([real, fake.detach()]))
                    real_logits, fake_logits = logits[: len(real)], logits[len(real) :]
                else:
                    real_logits, fake_logits = rt.D_train(real), rt.D_train(fake.detach())
            real_logits, fake_logits = real_logits.float(), fake_logits.float()
            loss = losses.d_bce(real_logits, fake_logits) / k
            rt.scaler_d.scale(loss).backward()
        total = total + loss.detach()
        real_p = real_p + torch.sigmoid(real_logits.detach()).mean() / k
        fake_p = fake_p + torch.sigmoid(fake_logits.detach()).mean() / k
        if keep_fakes:
            fakes.append(fake)
    return total, real_p, fake_p, fakes


def g_backward(rt: Runtime, latents: list[torch.Tensor], fakes: list[torch.Tensor]) -> torch.Tensor:
    """Accumulate G's gradient (non-saturating loss) through the just-updated D."""
    k = len(latents)
    total = torch.zeros((), device=rt.device)
    rt.D.requires_grad_(False)  # no weight gradients for D in G's pass
    try:
        for i, z in enumerate(latents):
            with _sync_unless_last(rt.G_train, i, k):
                # A fresh autocast context: D's low-precision weights are cast again
                # after its update (the cast cache lives as long as the context).
                with rt.autocast():
                    fake = fakes[i] if fakes else rt.G_train(z)
                    logits = rt.D_forward(fake)
                loss = losses.g_nonsaturating(logits.float()) / k
                rt.scaler_g.scale(loss).backward()
            total = total + loss.detach()
    finally:
        rt.D.requires_grad_(True)
    return total


def train_step(rt: Runtime, reals: list[torch.Tensor], latents: list[torch.Tensor]) -> StepStats:
    """One D step and one G step over K micro-batches (K = len(reals)), then the EMA."""
    # 1. Discriminator: one optimizer step per K micro-batches.
    rt.opt_d.zero_grad(set_to_none=True)
    d_loss, d_real, d_fake, fakes = d_backward(rt, reals, latents, keep_fakes=len(reals) == 1)
    rt.scaler_d.step(rt.opt_d)  # fp16: skips a step with inf gradients, no host sync
    rt.scaler_d.update()
    # 2. Generator: make D call the same fakes real.
    rt.opt_g.zero_grad(set_to_none=True)
    g_loss = g_backward(rt, latents, fakes)
    rt.scaler_g.step(rt.opt_g)
    rt.scaler_g.update()
    # 3. The moving average of G used for grids and samples.
    if rt.G_ema is not None:
        rt.G_ema.update_parameters(rt.G)
    return StepStats(d_loss, g_loss, d_real, d_fake)
