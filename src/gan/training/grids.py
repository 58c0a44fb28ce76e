"""The grid writer: reals.png at the start, samples-<step>.png from latents drawn once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan import images
from gan.atomic import atomic_file
from gan.config import TrainConfig
from gan.devices import release_cached_memory
from gan.models.generate import class_rows, generate_all
from gan.runs.folders import RunPaths
from gan.runs.tracking import Log, NullLog
from gan.training.batches import DeviceBatches
from gan.training.runtime import Runtime


class GridWriter:
    """Grids of the same latents all through a run (StyleGAN's habit), to the trackers and
    assets/<run>/, at the steps the schedule names. Its state is those latents, so a
    resumed run draws the same grid."""

    def __init__(
        self,
        seed: int,
        image_shape: tuple[int, ...],
        latent_shape: tuple[int, ...],
        device: torch.device,
        paths: RunPaths | None = None,
        log: Log | None = None,
        is_main: bool = True,
        classes: int = 0,
    ) -> None:
        self.seed, self.device = seed, device
        self.paths, self.log, self.is_main = paths, log or NullLog(), is_main
        gen = torch.Generator().manual_seed(seed + 1)  # its own generator: the run's stay put
        count, self.nrow, self.labels = images.grid_count(image_shape), None, None
        if classes:  # a conditional G: one class per row
            self.labels, self.nrow = class_rows(classes, count)
            count = len(self.labels)
        self.latents = torch.randn(count, *latent_shape, generator=gen).to(device)

    @classmethod
    def from_config(
        cls,
        train: TrainConfig,
        image_shape: tuple[int, ...],
        runtime: Runtime,
        paths: RunPaths | None,
        log: Log | None,
    ) -> GridWriter:
        """Grids of the run's G (rank 0 writes them)."""
        return cls(
            train.seed,
            image_shape,
            runtime.G.latent_shape,
            runtime.device,
            paths,
            log,
            is_main=runtime.dist.is_main,
            classes=getattr(runtime.G, "num_classes", 0),
        )

    def state_dict(self) -> dict[str, Any]:
        return {"fixed_latents": self.latents.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        latents = state["fixed_latents"]
        if not isinstance(latents, torch.Tensor) or latents.shape != self.latents.shape:
            raise ValueError(f"grid latents of shape {tuple(getattr(latents, 'shape', ()))}")
        self.latents = latents.to(self.device)

    def save_reals(self, batches: DeviceBatches) -> None:
        """As many real images as the grid has samples, picked by the run's seed."""
        if self.paths is None or not self.is_main:
            return
        gen = torch.Generator().manual_seed(self.seed + 2)
        order = torch.randperm(batches.num_images, generator=gen)
        if self.labels is not None and batches.labels is not None:  # a class a row, as G's
            known = batches.labels.cpu()[order]
            slots = self.labels.cpu()
            pick = torch.empty(len(slots), dtype=torch.long)
            for c in slots.unique().tolist():
                where = (slots == c).nonzero().flatten()
                found = order[known == c][: len(where)]
                pick[where[: len(found)]] = found
                pick[where[len(found) :]] = order[0]  # a class with too few images: filler
        else:
            pick = order[: len(self.latents)]
        reals = batches.images[pick.to(batches.images.device)].float() / 127.5 - 1.0
        picture = images.grid(reals, self.nrow)
        save_grid(picture, self.paths.assets / "reals.png")
        self.log.image("reals", picture, 0)

    def render(self, generator: nn.Module) -> torch.Tensor:
        """G's images of the grid's fixed latents (and classes)."""
        return generate_all(
            generator, latents=self.latents, labels=self.labels, batch_size=len(self.latents)
        )

    def write(self, generator: nn.Module, step: int) -> None:
        if not self.is_main:
            return
        picture = images.grid(self.render(generator), self.nrow)
        self.log.image("samples", picture, step)
        if self.paths is not None:
            save_grid(picture, self.paths.assets / f"samples-{step:07d}.png")
        release_cached_memory(self.device)


def save_grid(grid: torch.Tensor, path: Path) -> None:
    """A grid as a PNG written whole under a new name and renamed over `path`: a link or a
    FIFO planted at `path` is replaced, never written through, and a kill leaves no torn
    picture (the temporary file's leftovers go when the run next starts)."""
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, durable=False) as f:
        save_image(grid, f, format="png")
