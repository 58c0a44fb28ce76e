"""Micro-batches from an in-memory uint8 tensor: kept on the training device when it fits,
else in pinned host memory and copied over without blocking."""

from __future__ import annotations

from collections import deque

import torch
from loguru import logger

# Data may take this share of the GPU's free memory; the rest is for the models' activations.
DEVICE_SHARE = 0.5


def fits_on_device(images: torch.Tensor, device: torch.device) -> bool:
    if device.type != "cuda":
        return True  # CPU: already there; MPS: unified memory
    free, _ = torch.cuda.mem_get_info(device)
    return images.numel() * images.element_size() <= DEVICE_SHARE * free


class DeviceBatches:
    """An endless stream of shuffled micro-batches, normalised to [-1, 1] on the device.

    The order depends only on (seed, epoch), and the stream's state is one integer
    (images served so far), so a run can be resumed at exactly the same place.
    A batch that crosses an epoch boundary takes the rest of one permutation and
    the start of the next, so any batch size works on any dataset size.

    Data that fits (`resident`) lives on the device as uint8 and is gathered there by
    index; no DataLoader, no per-sample collate. Data that does not is gathered on the
    host into pinned buffers and copied with non_blocking=True, so the copy of the next
    batch overlaps the GPU's work on this one.
    """

    def __init__(
        self,
        images: torch.Tensor,
        device: torch.device,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        memory_format: torch.memory_format = torch.contiguous_format,
        resident: bool | None = None,
        labels: torch.Tensor | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise TypeError("images must be a uint8 tensor N x C x H x W")
        if labels is not None and labels.shape != (len(images),):
            raise ValueError("labels must hold one class index per image")
        self.resident = fits_on_device(images, device) if resident is None else resident
        self.device = device
        self.images = images.to(device) if self.resident else _pinned(images)
        # Labels are small: always on the device, gathered by the same indices as images.
        self.labels = labels.to(device, torch.int64) if labels is not None else None
        self.batch_size = batch_size
        self.seed = seed
        self.memory_format = memory_format
        # Every process walks the same seeded stream, global batches of B x world size,
        # and keeps its own slice: disjoint shards, and `position` means the same everywhere.
        self.rank, self.world_size = rank, world_size
        self.position = 0
        self._cached: tuple[int, torch.Tensor] | None = None
        self._buffers: deque[tuple[torch.Tensor, torch.cuda.Event | None]] = deque()

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
            if self.images.device.type == "cuda":
                perm = perm.pin_memory()  # so that the copy below does not block
            self._cached = (epoch, perm.to(self.images.device, non_blocking=True))
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
        return self.next_labelled()[0]

    def next_labelled(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next micro-batch and its labels (None for unlabelled data), on the device."""
        indices = self.next_indices()
        batch = self.images.index_select(0, indices) if self.resident else self._copy_in(indices)
        batch = batch.float().div_(127.5).sub_(1.0)
        labels = None
        if self.labels is not None:
            labels = self.labels.index_select(0, indices.to(self.labels.device))
        return batch.contiguous(memory_format=self.memory_format), labels

    def _copy_in(self, indices: torch.Tensor) -> torch.Tensor:
        buffer, done = self._free_buffer(len(indices))
        torch.index_select(self.images, 0, indices, out=buffer)
        batch = buffer.to(self.device, non_blocking=True)
        if done is not None:
            done.record()  # the buffer may be refilled once the copy has run
        self._buffers.append((buffer, done))
        return batch

    def _free_buffer(self, count: int) -> tuple[torch.Tensor, torch.cuda.Event | None]:
        """A pinned buffer whose last copy has finished (checked without waiting)."""
        if self._buffers:
            buffer, done = self._buffers[0]
            ready = done is None or done.query() or len(self._buffers) >= 16
            if ready and buffer.shape[0] == count:
                self._buffers.popleft()
                if done is not None:
                    done.synchronize()  # finished already, unless 16 copies are in flight
                return buffer, done
        shape = (count, *self.images.shape[1:])
        pinned = self.device.type == "cuda"
        buffer = torch.empty(shape, dtype=torch.uint8, pin_memory=pinned)
        return buffer, torch.cuda.Event() if pinned else None


def _pinned(images: torch.Tensor) -> torch.Tensor:
    """Page-locked host memory, so that copies to the GPU run asynchronously."""
    try:
        return images.pin_memory()
    except RuntimeError as exc:
        logger.warning(
            "Could not pin {} MB of images ({}); copies will block.",
            images.numel() >> 20,
            str(exc).splitlines()[0][:100],
        )
        return images
