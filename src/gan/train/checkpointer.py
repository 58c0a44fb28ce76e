"""The checkpointer: atomic step checkpoints, last.pt and best.pt, and the oldest pruned."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from loguru import logger

from gan import checkpoint, distributed, rng
from gan.devices import release_cached_memory
from gan.errors import Diverged
from gan.runs.folders import RunPaths

if TYPE_CHECKING:
    from gan.train.loop import Trainer


class Checkpointer:
    """Writes the trainer's state every `every` steps, on rank 0, never with NaN weights.

    `header` (the config, model and dataset descriptions) goes into every checkpoint, so
    `gan sample` and `--resume` need nothing else. Its own state is the last step saved.
    """

    def __init__(
        self,
        every: int,
        keep: int,
        paths: RunPaths | None = None,
        header: dict[str, Any] | None = None,
    ) -> None:
        self.every, self.keep, self.paths = every, keep, paths
        self.header = header or {}
        self.saved_step = -1

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def save(self, trainer: Trainer, best: bool = False) -> Path | None:
        """A collective under DDP: every process hands over its RNG state; rank 0 writes."""
        latest = trainer.latest
        if latest is not None and not bool(torch.isfinite(latest.d_loss + latest.g_loss)):
            raise Diverged(trainer.step, trainer.step)  # keep the good checkpoints
        rt = trainer.runtime
        rng_states = distributed.gather(rng.capture(rt.device), rt.dist)
        self.saved_step = trainer.step  # on every rank: the final save is a collective too
        if self.paths is None or not rt.dist.is_main:
            return None
        state = {
            "format_version": checkpoint.FORMAT_VERSION,
            "run_name": self.paths.name,
            **self.header,
            **trainer.state_dict(rng_states),
        }
        path = checkpoint.save_atomic(
            state, checkpoint.step_path(self.paths.checkpoints, trainer.step)
        )
        checkpoint.publish(path, self.paths.run_last)
        checkpoint.publish(path, self.paths.last)  # the workdir's newest, of any run
        if best:
            checkpoint.publish(path, self.paths.checkpoints / "best.pt")
            logger.info("New best FID {:.4g} at step {}: best.pt", state["best_fid"], trainer.step)
        checkpoint.prune(self.paths.checkpoints, self.keep)
        release_cached_memory(rt.device)
        logger.info("Saved checkpoint {}", path)
        return path
