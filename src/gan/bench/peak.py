"""This machine's matrix-multiply peak: the best rate of square GEMMs of a few sizes."""

from __future__ import annotations

import time

import torch

from gan import speed
from gan.devices import synchronize

CPU_SIZES = (512, 1024, 2048)  # 4096 (64 MB of fp32) no longer fits the caches
GPU_SIZES = (2048, 4096, 8192)


def supported(precision: str, device: torch.device) -> bool:
    """Whether this device has fast arithmetic for the format (no emulation measured)."""
    if precision == "fp32":
        return True
    if device.type == "cuda":
        return precision == "fp16" or torch.cuda.is_bf16_supported(including_emulation=False)
    # A CPU without instructions for the format emulates it (about 1 GFLOP/s): no peak.
    if device.type == "cpu" and precision == "bf16":
        return speed.cpu_has_native_bf16()
    if device.type == "cpu":
        return bool(speed.cpu_flags() & {"avx512_fp16", "amx_fp16", "asimdhp"})
    return precision == "fp16"  # MPS


def gemm_gflops(precision: str, size: int, device: torch.device, seconds: float) -> float:
    """Best GFLOP/s of `size` x `size` matrix products over about `seconds`."""
    dtype = speed.DTYPES[precision]
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device, dtype)
    b = torch.randn(size, size, generator=gen).to(device, dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    flops = 2.0 * size**3
    torch.matmul(a, b, out=out)  # first call: library set-up
    synchronize(device)
    # Repeat enough products per timing that one lasts about 10 ms, then keep the best.
    start = time.perf_counter()
    torch.matmul(a, b, out=out)
    synchronize(device)
    reps = max(1, int(0.01 / max(time.perf_counter() - start, 1e-6)))
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b, out=out)
        synchronize(device)
        best = max(best, reps * flops / (time.perf_counter() - start) / 1e9)
    return best


def measure_peaks(
    precisions: list[str], device: torch.device, seconds: float = 1.0
) -> dict[str, dict[str, float | int | None]]:
    """{precision: {"gflops": best, "size": n}} for each precision (None: not supported)."""
    sizes = GPU_SIZES if device.type == "cuda" else CPU_SIZES
    peaks: dict[str, dict[str, float | int | None]] = {}
    for precision in precisions:
        if not supported(precision, device):
            peaks[precision] = {"gflops": None, "size": None}
            continue
        rates = {n: gemm_gflops(precision, n, device, seconds / len(sizes)) for n in sizes}
        size = max(rates, key=rates.__getitem__)
        peaks[precision] = {"gflops": rates[size], "size": size}
    return peaks


def best_peaks(*runs: dict[str, dict[str, float | int | None]]) -> dict[str, dict]:
    """Per precision, the run with the highest rate (an unsupported one stays None)."""
    best: dict[str, dict] = {}
    for run in runs:
        for precision, peak in run.items():
            if precision not in best or (peak["gflops"] or 0) > (best[precision]["gflops"] or 0):
                best[precision] = peak
    return best
