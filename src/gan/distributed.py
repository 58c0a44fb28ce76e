"""Multi-process training on PyTorch's own stack: torchrun's environment, DDP, collectives.

`--batch-size` is per process: the global batch is batch size x accumulation steps x world
size. Outside torchrun every helper here degrades to its single-process meaning.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from gan.errors import GanError

TIMEOUT = timedelta(seconds=int(os.environ.get("GAN_DIST_TIMEOUT", "600")))


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    launched: bool = False  # started by torchrun (even as a single process)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        """A process group is used: under torchrun, or with several processes."""
        return self.launched or self.world_size > 1


def from_env() -> DistInfo:
    """torchrun sets RANK, LOCAL_RANK and WORLD_SIZE for every process it starts."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise GanError(
            "RANK, LOCAL_RANK or WORLD_SIZE is not a number; launch with torchrun."
        ) from None
    return DistInfo(rank, local, world, launched="LOCAL_RANK" in os.environ)


def init(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group: NCCL for CUDA, gloo otherwise; one GPU per local rank."""
    if not info.active:
        return device
    if device.type == "cuda":
        if info.local_rank >= torch.cuda.device_count():
            raise GanError(
                f"Local rank {info.local_rank} has no GPU ({torch.cuda.device_count()} here); "
                "start at most one process per GPU."
            )
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend, "timeout": TIMEOUT}
        if device.type == "cuda":
            kwargs["device_id"] = device
        dist.init_process_group(**kwargs)
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def prepare(module: nn.Module, info: DistInfo, sync_bn: bool) -> nn.Module:
    """SyncBatchNorm conversion (--sync-bn) before the module gets its optimizer."""
    if info.active and sync_bn:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return module


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DistributedDataParallel when several processes train; rank 0's weights win at start."""
    if not info.active:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    device_ids = [device.index] if device.type == "cuda" else None
    # A growing model (--grow) leaves the layers of the sizes it has not reached unused.
    growing = any(hasattr(m, "set_stage") for m in module.modules())
    return DDP(module, device_ids=device_ids, find_unused_parameters=growing)


def mean(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a tensor over processes (logging steps only)."""
    if info.active:
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= info.world_size
    return tensor


def total(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over processes (a collective: every process must call it)."""
    if info.active:
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every process when it is true on one (a stop request, say)."""
    if not info.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def gather(obj: Any, info: DistInfo) -> list[Any]:
    """Every process's `obj`, in rank order (RNG states for a checkpoint)."""
    if not info.active:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


def launch(nproc: int, argv: list[str]) -> int:
    """`gan train --nproc N`: the same command under torchrun (in this process) on this machine.

    torchrun stops every process when one fails; each failed process has already printed
    its own one-sentence error, so the launcher adds one line instead of torchrun's report.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "gan", *argv])
    try:
        run(args)
    except SignalException as exc:  # torchrun passed it on and waited for the processes
        name = signal.Signals(exc.sigval).name
        print(
            f"Stopped by {name}: the {nproc} processes finished their step and saved a "
            "checkpoint (see above); resume with --resume auto.",
            file=sys.stderr,
        )
        return 0
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        print(
            f"Error: process {rank} of {nproc} stopped with exit code {failure.exitcode}; "
            "its message is above, and the other processes were stopped.",
            file=sys.stderr,
        )
        return 1
    return 0
