"""A run's parts, by name: what a checkpoint holds, each part's state under its own name.

Each part owns its state (`state_dict`, `load_state_dict`), as torchtitan's checkpoint
manager holds `Stateful` parts: the runtime (weights, optimizers, EMA), the recipe (the
augmentation's strength and generators), the draws (the place in the data, the latents'
generator), the grid's latents, the reporter's best FID, and the loop's random states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from loguru import logger

from gan import distributed, rng
from gan.training.draws import Draws
from gan.training.grids import GridWriter
from gan.training.recipe import Recipe
from gan.training.reporter import Reporter
from gan.training.runtime import Runtime


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class RandomStates:
    """The loop's part: the process-wide generators (Python, NumPy, torch, CUDA) of every
    process. Capturing them is a collective under DDP: each process hands over its own."""

    def __init__(self, device: torch.device, dist: distributed.DistInfo) -> None:
        self.device, self.dist = device, dist

    def state_dict(self) -> dict[str, Any]:
        states = distributed.gather(rng.capture(self.device), self.dist)
        return {"rng": states[0], "rng_ranks": states, "world_size": self.dist.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        rank, ranks = self.dist.rank, state.get("rng_ranks") or [state["rng"]]
        try:
            rng.restore(ranks[rank] if len(ranks) > rank else ranks[0], self.device)
        except RuntimeError:  # a checkpoint from another kind of device
            logger.warning(
                "Random states were not restored (the checkpoint is from another device)."
            )


@dataclass
class Parts:
    runtime: Runtime
    recipe: Recipe
    draws: Draws
    grids: GridWriter
    reporter: Reporter
    loop: RandomStates

    NAMES = ("runtime", "recipe", "draws", "grids", "reporter", "loop")

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """Every part's state under its name (a collective under DDP: see RandomStates)."""
        return {name: getattr(self, name).state_dict() for name in self.NAMES}

    def load_state_dict(self, state: dict[str, dict[str, Any]]) -> None:
        for name in self.NAMES:
            getattr(self, name).load_state_dict(state[name])
