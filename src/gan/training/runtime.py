"""The runtime builder: (device, precision, layout, compile, DDP) -> ready-to-train modules.

`gan train` and `gan bench` both set up the device and the speed settings here, and both
train what `build_runtime` returns, so the bench measures the loop users run.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gan import distributed, speed
from gan.devices import configure_cuda_allocator, configure_host_allocator, resolve_device
from gan.errors import SyncBatchNormNeedsCuda
from gan.speed import Speed
from gan.training.ema import EMA


def setup_device(
    name: str, dist: distributed.DistInfo | None = None, sync_bn: bool = False
) -> torch.device:
    """The torch device for `name` (auto, cpu, cuda:N, mps), allocators set up, and this
    process in its process group when several train together."""
    configure_cuda_allocator()
    device = resolve_device(name)
    configure_host_allocator(device)
    if sync_bn and device.type != "cuda":
        raise SyncBatchNormNeedsCuda()
    return distributed.init(dist, device) if dist is not None else device


def setup_speed(
    precision: str, channels_last: bool | None, compile: bool, device: torch.device
) -> Speed:
    """Concrete precision, memory format and compile settings, backends configured."""
    settings = speed.resolve_speed(precision, channels_last, compile, device)
    speed.configure_backends(device)
    return speed.settle_compile(settings, device)


@dataclass
class Runtime:
    """G and D on their device, with the wrappers the training passes go through."""

    G: nn.Module  # the bare modules hold the weights (checkpoints, EMA, grids)
    D: nn.Module
    G_train: nn.Module  # compiled and/or DDP-wrapped G for the training passes
    D_train: nn.Module  # compiled and/or DDP-wrapped D for D's pass
    D_forward: nn.Module  # compiled D without DDP, for G's pass (no gradient for D there)
    G_ema: EMA | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    joint_d: bool  # D has no batch statistics: reals and fakes may share one pass
    device: torch.device
    speed: Speed
    dist: distributed.DistInfo
    lr: tuple[float, float] = (2e-4, 2e-4)  # G's and D's, before the schedule's factor

    def autocast(self) -> contextlib.AbstractContextManager:
        return speed.autocast(self.device, self.speed)

    @property
    def sampling_generator(self) -> nn.Module:
        """The EMA of G when there is one: smoother samples than the raw weights."""
        return self.G_ema.module if self.G_ema is not None else self.G

    def scale_learning_rates(self, factor: float) -> dict[str, float]:
        """Both optimizers at `factor` of their learning rates; the rates now in use."""
        for optimizer, lr in ((self.opt_g, self.lr[0]), (self.opt_d, self.lr[1])):
            for group in optimizer.param_groups:
                group["lr"] = lr * factor
        return {"lr_g": self.lr[0] * factor, "lr_d": self.lr[1] * factor}

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.G.state_dict(),
            "generator_ema": self.G_ema.module.state_dict() if self.G_ema is not None else None,
            "ema_updates": int(self.G_ema.n_averaged) if self.G_ema is not None else 0,
            "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),  # fp16's loss scales ({} otherwise)
            "scaler_d": self.scaler_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        for optimizer, key in ((self.opt_g, "opt_g"), (self.opt_d, "opt_d")):
            speed.load_optimizer(optimizer, state[key])
        for scaler, key in ((self.scaler_g, "scaler_g"), (self.scaler_d, "scaler_d")):
            if scaler.is_enabled() and state.get(key):  # an fp16 run resumed in fp16
                scaler.load_state_dict(state[key])
        if self.G_ema is not None and state.get("generator_ema") is not None:
            self.G_ema.module.load_state_dict(state["generator_ema"])
            self.G_ema.n_averaged = int(state.get("ema_updates", 0))


def build_runtime(
    generator: nn.Module,
    discriminator: nn.Module,
    device: torch.device,
    *,
    lr: tuple[float, float] = (2e-4, 2e-4),
    betas: tuple[float, float] = (0.5, 0.999),
    ema_decay: float = 0.999,
    settings: Speed | None = None,
    dist: distributed.DistInfo | None = None,
    sync_bn: bool = False,
    spectral_norm: bool = False,
    compile_d: bool = True,
) -> Runtime:
    """Move G and D to the device in their memory format, make the EMA, optimizers and
    loss scalers (lr and betas: G's, then D's), compile and wrap for DDP.

    `spectral_norm` puts D's convolutions and linear layers under spectral normalisation;
    `compile_d=False` keeps D eager (gradient penalties need its double backward)."""
    settings, dist = settings or Speed(), dist or distributed.DistInfo()
    if spectral_norm:
        add_spectral_norm(discriminator)

    def place(module: nn.Module) -> nn.Module:
        module = distributed.prepare(module, dist, sync_bn).to(device)
        return speed.to_memory_format(module, settings)

    G, D = place(generator), place(discriminator)
    D_forward = speed.maybe_compile(D, settings) if compile_d else D
    return Runtime(
        G=G,
        D=D,
        G_train=distributed.wrap(speed.maybe_compile(G, settings), dist, device),
        D_train=distributed.wrap(D_forward, dist, device),
        D_forward=D_forward,
        G_ema=EMA(G, ema_decay) if ema_decay > 0 else None,
        opt_g=speed.adam(list(G.parameters()), lr[0], betas, device),
        opt_d=speed.adam(list(D.parameters()), lr[1], betas, device),
        scaler_g=speed.grad_scaler(device, settings),
        scaler_d=speed.grad_scaler(device, settings),
        joint_d=bool(getattr(discriminator, "batch_independent", False)),
        device=device,
        speed=settings,
        dist=dist,
        lr=lr,
    )


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every conv and linear layer, in place.
    Its power-iteration vectors are buffers: checkpoints store and restore them exactly."""
    from torch.nn.utils.parametrizations import spectral_norm

    layers = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)
    for layer in [m for m in module.modules() if isinstance(m, layers)]:
        spectral_norm(layer)
    return module
