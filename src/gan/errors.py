"""The exceptions users see: each a sentence saying what is wrong and what to do.

The training library words its errors without command-line flags; the CLI re-words the
ones that have a flag to suggest (`gan.cli.options.cli_message`).
"""

from __future__ import annotations


class GanError(Exception):
    """A user-facing error; the CLI prints its message and exits with code 1."""


class DoesNotFit(GanError):
    """A checkpoint loaded but its state does not fit the run built from it (a damaged or
    foreign file): `--resume auto` goes on to an older checkpoint of the run."""

    def __init__(self, path: object, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(
            f"{path} does not fit this run ({reason}), so nothing of the run was changed; "
            "resume from a checkpoint gan train wrote for it."
        )


class Diverged(GanError):
    """A loss became NaN or infinite; the checkpoints written before are kept."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.span = f"step {last}" if first >= last else f"steps {first}-{last}"
        super().__init__(
            f"Training diverged: a loss became NaN or infinite in {self.span}; lower the "
            "learning rates and resume from the last checkpoint, which is untouched."
        )


class OutOfMemory(GanError):
    """The device ran out of memory for one micro-batch."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        super().__init__(
            f"CUDA ran out of memory at a micro-batch of {batch_size}; use a smaller "
            "micro-batch and more accumulation steps (same effective batch, less memory)."
        )


class SyncBatchNormNeedsCuda(GanError):
    def __init__(self) -> None:
        super().__init__("SyncBatchNorm needs CUDA GPUs; it does not run on the CPU.")
