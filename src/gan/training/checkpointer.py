"""The checkpointer: the run's parts saved by name at the schedule's steps, atomically, as
step files, last.pt and best.pt, the oldest pruned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan import checkpoint
from gan.devices import release_cached_memory
from gan.runs.folders import RunPaths
from gan.training.parts import Parts
from gan.training.schedule import Schedule


class Checkpointer:
    """Saves `parts`, each under its name (`Parts.state_dict`), with the `header` (the
    config, model and dataset descriptions, so `gan sample` and `--resume` need nothing
    else), the step and the schedule. Due every `schedule.checkpoint_every` steps; rank 0
    writes (`paths` None elsewhere), every rank joins the random states' gather."""

    def __init__(
        self,
        parts: Parts,
        schedule: Schedule,
        keep: int,
        paths: RunPaths | None = None,
        header: dict[str, Any] | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.parts, self.schedule, self.keep, self.paths = parts, schedule, keep, paths
        self.header = header or {}
        self.device = device or torch.device("cpu")
        self.saved_step = -1

    def due(self, step: int) -> bool:
        return self.schedule.checkpoint_due(step)

    def state(self, step: int) -> dict[str, Any]:
        """The checkpoint of `step`, as `gan.checkpoint.load_checkpoint` returns it."""
        return {
            "format_version": checkpoint.FORMAT_VERSION,
            "run_name": self.paths.name if self.paths is not None else None,
            **self.header,
            "step": step,
            "schedule": self.schedule.to_dict(),
            **self.parts.state_dict(),
        }

    def save(self, step: int, best: bool = False) -> Path | None:
        """The checkpoint of `step`, published as last.pt (and best.pt), the oldest step
        files pruned. A collective under DDP."""
        self.saved_step = step  # on every rank: the final save is a collective too
        state = self.state(step)
        if self.paths is None:
            return None
        path = checkpoint.save_atomic(state, checkpoint.step_path(self.paths.checkpoints, step))
        checkpoint.publish(path, self.paths.run_last)
        checkpoint.publish(path, self.paths.last)  # the workdir's newest, of any run
        if best:
            checkpoint.publish(path, self.paths.checkpoints / "best.pt")
            fid = state["reporter"]["best_fid"]
            logger.info("New best FID {:.4g} at step {}: best.pt", fid, step)
        checkpoint.prune(self.paths.checkpoints, self.keep)
        release_cached_memory(self.device)
        logger.info("Saved checkpoint {}", path)
        return path

    def save_last(self, step: int) -> Path | None:
        """At the end of a session: the checkpoint of `step`, unless it is saved already."""
        return None if step == self.saved_step else self.save(step)
