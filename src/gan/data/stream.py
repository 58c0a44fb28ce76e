"""Micro-batches from an in-memory uint8 tensor kept on the training device."""

from __future__ import annotations

import torch


class DeviceBatches:
    """An endless stream of shuffled micro-batches, normalised to [-1, 1] on the device.

    The order depends only on (seed, epoch), and the stream's state is one integer
    (images served so far), so a run can be resumed at exactly the same place.
    A batch that crosses an epoch boundary takes the rest of one permutation and
    the start of the next, so any batch size works on any dataset size.
    """

    def __init__(
        self,
        images: torch.Tensor,
        device: torch.device,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise TypeError("images must be a uint8 tensor N x C x H x W")
        self.images = images.to(device)
        self.device = device
        self.batch_size = batch_size
        self.seed = seed
        # Every process walks the same seeded stream, global batches of B x world size,
        # and keeps its own slice: disjoint shards, and `position` means the same everywhere.
        self.rank, self.world_size = rank, world_size
        self.position = 0
        self._cached: tuple[int, torch.Tensor] | None = None

    @property
    def num_images(self) -> int:
        return self.images.shape[0]

    @property
    def epoch(self) -> int:
        return self.position // self.num_images

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._cached is None or self._cached[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.num_images, generator=generator)
            self._cached = (epoch, perm.to(self.device, non_blocking=True))
        return self._cached[1]

    def next_indices(self) -> torch.Tensor:
        parts, needed = [], self.batch_size * self.world_size
        while needed:
            epoch, offset = divmod(self.position, self.num_images)
            take = min(needed, self.num_images - offset)
            parts.append(self._permutation(epoch)[offset : offset + take])
            self.position += take
            needed -= take
        indices = parts[0] if len(parts) == 1 else torch.cat(parts)
        if self.world_size > 1:
            indices = indices[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        return indices

    def next(self) -> torch.Tensor:
        """The next micro-batch as float32 in [-1, 1], on the device."""
        batch = self.images.index_select(0, self.next_indices())
        return batch.float().div_(127.5).sub_(1.0)
