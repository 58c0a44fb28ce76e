"""The naive baseline `gan bench` compares against: the loop a tutorial writes.

The same models, losses, batch and gradient accumulation as the Trainer, but fp32, NCHW,
eager, torch.optim.Adam's defaults, a DataLoader over a TensorDataset of float images
(per-sample indexing and collate), `.to(device)` per batch, and `.item()` on the losses
every step for the progress print.
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from gan.devices import synchronize
from gan.models import build_models
from gan.training import losses


def baseline_images_per_s(
    model: str,
    images: torch.Tensor,
    batch_size: int,
    accumulation: int,
    device: torch.device,
    seconds: float,
    min_steps: int = 2,
) -> float:
    """Images per second of the naive loop, after one warm-up step."""
    shape = tuple(images.shape[1:])
    G, D = build_models(model, shape, 100)
    G, D = G.to(device), D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    dataset = TensorDataset(images.float() / 127.5 - 1.0)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)

    def reals():
        while True:
            for (real,) in loader:
                yield real.to(device)

    stream = reals()

    def step() -> None:
        batch = [next(stream) for _ in range(accumulation)]
        zs = [torch.randn(batch_size, *G.latent_shape, device=device) for _ in batch]
        opt_d.zero_grad()
        fakes = []
        for real, z in zip(batch, zs, strict=True):
            fake = G(z) if accumulation == 1 else G(z).detach()
            loss = losses.d_bce(D(real), D(fake.detach())) / accumulation
            loss.backward()
            fakes.append(fake)
        opt_d.step()
        opt_g.zero_grad()
        for i, z in enumerate(zs):
            fake = fakes[i] if accumulation == 1 else G(z)
            g_loss = losses.g_nonsaturating(D(fake)) / accumulation
            g_loss.backward()
        opt_g.step()
        print_values = (loss.item(), g_loss.item())  # what a progress print does
        del print_values

    step()
    synchronize(device)
    steps, start = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < seconds:
        step()
        steps += 1
    synchronize(device)
    return steps * batch_size * accumulation / (time.perf_counter() - start)
