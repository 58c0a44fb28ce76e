"""The checkpointer: atomic step checkpoints, last.pt and best.pt, and the oldest pruned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan import checkpoint
from gan.config import TrainConfig
from gan.devices import release_cached_memory
from gan.runs.folders import RunPaths


class Checkpointer:
    """Writes what it is handed every `every` steps, on rank 0 (`paths` None elsewhere).

    `header` (the config, model and dataset descriptions) goes into every checkpoint, so
    `gan sample` and `--resume` need nothing else. Its own state is the last step saved.
    """

    def __init__(
        self,
        every: int,
        keep: int,
        paths: RunPaths | None = None,
        header: dict[str, Any] | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.every, self.keep, self.paths = every, keep, paths
        self.header = header or {}
        self.device = device or torch.device("cpu")
        self.saved_step = -1

    @classmethod
    def from_config(
        cls, train: TrainConfig, paths: RunPaths | None, header: dict[str, Any], device
    ) -> Checkpointer:
        return cls(train.checkpoint_every, train.keep_checkpoints, paths, header, device)

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def save(self, step: int, state: dict[str, Any] | None, best: bool = False) -> Path | None:
        """Write `state` (the trainer's, on rank 0; None elsewhere) as the checkpoint of
        `step`, publish it as last.pt (and best.pt), and prune the oldest step files."""
        self.saved_step = step  # on every rank: the final save is a collective too
        if self.paths is None or state is None:
            return None
        state = {
            "format_version": checkpoint.FORMAT_VERSION,
            "run_name": self.paths.name,
            **self.header,
            **state,
        }
        path = checkpoint.save_atomic(state, checkpoint.step_path(self.paths.checkpoints, step))
        checkpoint.publish(path, self.paths.run_last)
        checkpoint.publish(path, self.paths.last)  # the workdir's newest, of any run
        if best:
            checkpoint.publish(path, self.paths.checkpoints / "best.pt")
            logger.info("New best FID {:.4g} at step {}: best.pt", state["best_fid"], step)
        checkpoint.prune(self.paths.checkpoints, self.keep)
        release_cached_memory(self.device)
        logger.info("Saved checkpoint {}", path)
        return path
