"""How fast a run trains: precision, memory layout, compilation, optimizer kernels, CUDA flags.

`resolve_speed` turns the options (`--precision auto|fp32|bf16|fp16`, `--channels-last`,
`--compile`) into concrete settings for one device; the Trainer and `gan bench` share them.
"""

from __future__ import annotations

import contextlib
import platform
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from loguru import logger
from torch import nn

from gan.config.training import PRECISIONS
from gan.errors import GanError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Speed:
    """Concrete settings for one device (no 'auto' left)."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for plain fp32."""
        return None if self.precision == "fp32" else DTYPES[self.precision]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def cpu_flags() -> frozenset[str]:
    """The instruction-set flags Linux lists in /proc/cpuinfo (empty elsewhere)."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def cpu_has_native_bf16() -> bool:
    """bf16 dot-product instructions (AVX512-BF16, AMX, Arm BF16): bf16 beats fp32 there.
    Elsewhere PyTorch emulates bf16, many times slower than fp32."""
    if platform.system() == "Darwin":
        return False  # Apple's CPU bf16 path in PyTorch is not faster than fp32
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})


def cpu_has_avx512() -> bool:
    return "avx512f" in cpu_flags()


def default_precision(device: torch.device) -> str:
    """The fastest precision that keeps quality on this device (see the README's table)."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"  # MPS: autocast works but is not measured here, so no lower precision unasked


def resolve_precision(precision: str, device: torch.device) -> str:
    """The concrete precision ('auto' by device), or a GanError where the device lacks it."""
    precision = precision.strip().lower()
    if precision not in PRECISIONS:
        raise GanError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}.")
    cuda = device.type == "cuda"
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported(including_emulation=False):
        name = torch.cuda.get_device_name(device)
        raise GanError(
            f"--precision bf16 needs a GPU with bf16 support (Ampere or newer); {name} has "
            "none. Use --precision fp16 or fp32."
        )
    return default_precision(device) if precision == "auto" else precision


def _warn_if_slow(precision: str, device: torch.device) -> None:
    if device.type != "cpu":
        return
    if precision == "bf16" and cpu_flags() and not cpu_has_native_bf16():
        logger.warning(
            "--precision bf16 on this CPU is emulated (it has no AVX512-BF16, AMX or Arm BF16 "
            "instructions) and trains many times slower than fp32; leave --precision at auto."
        )
    if precision == "fp16":
        logger.warning(
            "--precision fp16 on the CPU is slower than bf16 on most CPUs (few have fp16 "
            "arithmetic)."
        )


def resolve_speed(
    precision: str, channels_last: bool | None, compile: bool, device: torch.device
) -> Speed:
    """Concrete settings: precision and channels-last by device where not given."""
    precision = resolve_precision(precision, device)
    _warn_if_slow(precision, device)
    if channels_last is None:
        channels_last = default_channels_last(precision, device)
    return Speed(precision, channels_last, compile)


def default_channels_last(precision: str, device: torch.device) -> bool:
    """NHWC where it was measured faster on this project's models (the README's table):
    CUDA's tensor cores and oneDNN's bf16 kernels want it, and so do oneDNN's fp32 kernels
    on AVX2 CPUs; its AVX-512 fp32 kernels are faster in NCHW. Unmeasured CPUs: NCHW."""
    if device.type == "cuda" or precision != "fp32":
        return True
    return device.type == "cpu" and "avx2" in cpu_flags() and not cpu_has_avx512()


def autocast(device: torch.device, speed: Speed) -> contextlib.AbstractContextManager:
    """Mixed precision for a forward pass. Enter it per phase, never around optimizer steps:
    autocast caches the low-precision copies of the weights until the context exits."""
    if speed.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=speed.amp_dtype)


def grad_scaler(device: torch.device, speed: Speed) -> torch.amp.GradScaler:
    """A dynamic loss scale for fp16 (a pass-through otherwise)."""
    return torch.amp.GradScaler(device.type, enabled=speed.precision == "fp16")


def configure_backends(device: torch.device) -> None:
    """cuDNN autotuning (fixed shapes every step) and TF32 for the fp32 parts on CUDA."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def to_memory_format(module: nn.Module, speed: Speed) -> nn.Module:
    if speed.channels_last:
        module = module.to(memory_format=torch.channels_last)
    return module


def fused_supported(device: torch.device) -> bool:
    from torch.optim.optimizer import _get_fused_kernels_supported_devices

    return device.type in _get_fused_kernels_supported_devices()


def adam(
    params: list[nn.Parameter], lr: float, betas: tuple[float, float], device: torch.device
) -> torch.optim.Adam:
    """Adam with the fused kernel where the device has one (one kernel for all parameters;
    with a GradScaler it also skips inf steps without a host sync), else foreach."""
    if fused_supported(device):
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a state dict saved on any device, keeping this device's fused/foreach choice
    (it also decides where Adam keeps its step counters)."""
    mine = optimizer.param_groups[0]
    groups = [
        {**g, "fused": mine.get("fused"), "foreach": mine.get("foreach")}
        for g in state["param_groups"]
    ]
    optimizer.load_state_dict({**state, "param_groups": groups})


def compile_available(device: torch.device) -> str | None:
    """None when torch.compile can run here, else why not (checked by compiling a tiny
    function, which finds a missing C++ compiler or Triton before the model does)."""
    try:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            return f"torch.compile does not support Python {platform.python_version()}"
        probe = torch.compile(lambda x: torch.relu(x) * 2 + 1, fullgraph=True)
        out = probe(torch.ones(4, device=device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if not torch.equal(out.cpu(), torch.full((4,), 3.0)):
            return "a compiled test function returned wrong values"
    except Exception as exc:  # noqa: BLE001 - any failure means: run eagerly
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"{type(exc).__name__}: {first[:160]}"
    return None


def maybe_compile(module: nn.Module, speed: Speed) -> nn.Module:
    """torch.compile's wrapper for training passes; the bare module keeps the weights, the
    state dict and the sampling. A part that fails to compile later runs eagerly."""
    if not speed.compile:
        return module
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    # D is called with and without weight gradients and with reals, fakes and detached
    # fakes: each is its own graph, so leave room for more than the default 8.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 32)
    return torch.compile(module)


def settle_compile(speed: Speed, device: torch.device) -> Speed:
    """Turn --compile off, with one warning, where it cannot run."""
    if not speed.compile:
        return speed
    reason = compile_available(device)
    if reason is None:
        logger.info(
            "--compile: the first steps compile the training passes, which can take "
            "minutes on a small CPU (later runs reuse torch's compile cache)."
        )
        return speed
    logger.warning("--compile is not available here ({}); training without it.", reason)
    return Speed(speed.precision, speed.channels_last, False)


def describe(speed: Speed) -> str:
    parts = [speed.precision, "channels-last" if speed.channels_last else "NCHW"]
    if speed.compile:
        parts.append("compiled")
    return ", ".join(parts)
