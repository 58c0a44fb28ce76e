"""One optimisation step: D's passes (with penalties and augmentation), G's pass,
gradient accumulation, the EMA update and the augmentation strength's adjustment."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gan.training.losses import gradient_penalty, r1_penalty
from gan.training.recipe import Recipe
from gan.training.runtime import Runtime

# K real micro-batches, K latents, and K label batches (None entries: unconditional)
Micro = tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor | None]]


@dataclass
class StepStats:
    """Per-step numbers kept as device tensors, so a step never waits for the GPU."""

    d_loss: torch.Tensor
    g_loss: torch.Tensor
    d_real: torch.Tensor  # mean D(x) as the loss shows it: a probability (ns) or a score
    d_fake: torch.Tensor  # mean D(G(z)) before the D update, likewise
    augment_p: torch.Tensor | None = None  # the augmentation strength, where augmenting


def _sync_unless_last(module: nn.Module, index: int, count: int):
    """DDP's no_sync() for all but the last micro-batch: one all-reduce per step."""
    if index < count - 1 and hasattr(module, "no_sync"):
        return module.no_sync()
    return contextlib.nullcontext()


def run(module: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """module(x), or module(x, y) with labels (a conditional G or D)."""
    return module(x) if y is None else module(x, y)


def _d_outputs(rt: Runtime, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None):
    """D on reals and fakes; fakes were made for the reals' labels."""
    with rt.autocast():
        if rt.joint_d:  # one pass over reals and fakes: same losses, half the calls
            both = torch.cat([y, y]) if y is not None else None
            out = run(rt.D_train, torch.cat([real, fake]), both)
            real_out, fake_out = out[: len(real)], out[len(real) :]
        else:
            real_out, fake_out = run(rt.D_train, real, y), run(rt.D_train, fake, y)
    return real_out.float(), fake_out.float()


def _penalties(
    rt: Runtime, recipe: Recipe, real, real_out, fake, fake_out, y, r1: bool
) -> torch.Tensor:
    """R1 (and R2 on the fakes, for a relativistic loss) and WGAN-GP through
    autograd.grad(create_graph=True), for D's one backward. In fp16 the outputs are scaled
    before the gradient and unscaled after (AMP's recipe)."""
    scale = rt.scaler_d.get_scale() if rt.scaler_d.is_enabled() else None
    penalty = torch.zeros((), device=rt.device)
    if r1:
        gamma = recipe.r1_gamma * recipe.r1_every
        penalty = penalty + r1_penalty(real_out, real, gamma, scale)
        if recipe.loss.relativistic:  # R2: the same zero-centred penalty on the fakes
            penalty = penalty + r1_penalty(fake_out, fake, gamma, scale)
    if recipe.loss.gradient_penalty:
        eps = recipe.mixing_weights(len(real), rt.device)
        mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        with rt.autocast():
            mixed_out = run(rt.D_train, mixed, y).float()
        penalty = penalty + gradient_penalty(mixed_out, mixed, recipe.gp_weight, scale)
    return penalty


def d_backward(
    rt: Runtime,
    recipe: Recipe,
    reals: list[torch.Tensor],
    latents: list[torch.Tensor],
    keep_fakes: bool,
    r1: bool = False,
    labels: list[torch.Tensor | None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Accumulate D's gradient over micro-batches, each loss / K; reals and fakes
    augmented alike; R1 on the augmented reals when `r1`. With labels, the fakes of a
    micro-batch are made for its reals' labels."""
    k = len(reals)
    labels = labels or [None] * k
    total = real_shown = fake_shown = torch.zeros((), device=rt.device)
    fakes = []
    for i, (real, z, y) in enumerate(zip(reals, latents, labels, strict=True)):
        # With one micro-batch G's graph is kept for its own update; with K it is
        # rebuilt later so that memory stays at one micro-batch's worth.
        with torch.set_grad_enabled(keep_fakes), rt.autocast():
            fake = run(rt.G_train, z, y)
        real_in, fake_in = recipe.augment(real), recipe.augment(fake.detach())
        if r1:
            real_in = real_in.detach().requires_grad_(True)
            if recipe.loss.relativistic:
                fake_in = fake_in.detach().requires_grad_(True)
        with _sync_unless_last(rt.D_train, i, k):
            real_out, fake_out = _d_outputs(rt, real_in, fake_in, y)
            loss = recipe.loss.d(real_out, fake_out)
            if recipe.penalised:
                loss = loss + _penalties(rt, recipe, real_in, real_out, fake_in, fake_out, y, r1)
            rt.scaler_d.scale(loss / k).backward()
        if recipe.augment.adaptive:
            recipe.augment.observe(recipe.loss.real_signs(real_out, fake_out), len(real))
        total = total + loss.detach() / k
        real_shown = real_shown + recipe.loss.panel(real_out.detach()) / k
        fake_shown = fake_shown + recipe.loss.panel(fake_out.detach()) / k
        if keep_fakes:
            fakes.append(fake)
    return total, real_shown, fake_shown, fakes


def g_backward(
    rt: Runtime,
    recipe: Recipe,
    latents: list[torch.Tensor],
    fakes: list[torch.Tensor],
    labels: list[torch.Tensor | None] | None = None,
    reals: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Accumulate G's gradient through the just-updated D (fakes augmented as for D); a
    relativistic loss scores the micro-batch's reals beside them."""
    k = len(latents)
    labels = labels or [None] * k
    total = torch.zeros((), device=rt.device)
    trained = [p for p in rt.D.parameters() if p.requires_grad]  # not --freeze-d's blocks
    for param in trained:  # no weight gradients for D in G's pass
        param.requires_grad_(False)
    try:
        for i, (z, y) in enumerate(zip(latents, labels, strict=True)):
            with _sync_unless_last(rt.G_train, i, k):
                # A fresh autocast context: D's low-precision weights are cast again
                # after its update (the cast cache lives as long as the context).
                with rt.autocast():
                    fake = fakes[i] if fakes else run(rt.G_train, z, y)
                    out = run(rt.D_forward, recipe.augment(fake), y)
                    if recipe.loss.relativistic:
                        real_out = run(rt.D_forward, recipe.augment(reals[i]), y).detach()
                if recipe.loss.relativistic:
                    loss = recipe.loss.g(out.float(), real_out.float()) / k
                else:
                    loss = recipe.loss.g(out.float()) / k
                rt.scaler_g.scale(loss).backward()
            total = total + loss.detach()
    finally:
        for param in trained:
            param.requires_grad_(True)
    return total


def train_step(
    rt: Runtime,
    recipe: Recipe,
    draw: Callable[[], Micro],
    step: int,
    ramp_images: float = 1.0,
) -> StepStats:
    """n_critic D steps, then one G step, over K micro-batches each; then the EMA and ADA.

    `draw()` gives the next K real micro-batches, latents and labels; `step` counts the
    steps taken before this one (lazy R1 runs where it is a multiple of r1_every);
    `ramp_images`: ADA's ramp, from the schedule."""
    for critic in range(recipe.n_critic):
        reals, latents, labels = draw()
        rt.opt_d.zero_grad(set_to_none=True)
        keep = len(reals) == 1 and critic == recipe.n_critic - 1  # G's pass reuses them
        d_loss, d_real, d_fake, fakes = d_backward(
            rt, recipe, reals, latents, keep, recipe.r1_due(step), labels
        )
        rt.scaler_d.step(rt.opt_d)  # fp16: skips a step with inf gradients, no host sync
        rt.scaler_d.update()
    # The generator: make D call the last fakes real.
    rt.opt_g.zero_grad(set_to_none=True)
    g_loss = g_backward(rt, recipe, latents, fakes, labels, reals)
    rt.scaler_g.step(rt.opt_g)
    rt.scaler_g.update()
    # The moving average of G used for grids and samples, and the augmentation strength.
    if rt.G_ema is not None:
        rt.G_ema.update_parameters(rt.G)
    recipe.augment.adjust(step + 1, ramp_images)
    p = recipe.augment.p if recipe.augment.policy else None
    return StepStats(d_loss, g_loss, d_real, d_fake, p)
