"""The hand-written training loop. It knows no concrete model or dataset."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from loguru import logger
from torch import nn

from gan import distributed, images, losses
from gan import speed as speeds
from gan.config import Config
from gan.data.stream import DeviceBatches
from gan.devices import release_cached_memory
from gan.ema import make_ema
from gan.errors import GanError
from gan.outputs import RunPaths
from gan.progress import TrainingProgress
from gan.signals import StopRequests
from gan.speed import Speed
from gan.tracking import NullTracker, Tracker
from gan.trainer_logging import LoggingMixin
from gan.trainer_samples import SamplesMixin
from gan.trainer_state import CheckpointMixin


@dataclass
class StepStats:
    """Per-step numbers kept as device tensors, so a step never waits for the GPU."""

    d_loss: torch.Tensor
    g_loss: torch.Tensor
    d_real: torch.Tensor  # mean D(x) on reals, as a probability
    d_fake: torch.Tensor  # mean D(G(z)) before the D update


class Trainer(CheckpointMixin, SamplesMixin, LoggingMixin):
    def __init__(
        self,
        config: Config,
        generator: nn.Module,
        discriminator: nn.Module,
        batches: DeviceBatches,
        device: torch.device,
        paths: RunPaths | None = None,
        tracker: Tracker | None = None,
        meta: dict[str, Any] | None = None,
        dist: distributed.DistInfo | None = None,
        evaluator: Callable[[nn.Module], dict[str, Any]] | None = None,
        speed: Speed | None = None,
    ) -> None:
        self.config, self.device, self.paths = config, device, paths
        self.tracker = tracker or NullTracker()
        self.meta = meta or {}  # model and dataset descriptions stored in checkpoints
        self.dist = dist or distributed.DistInfo()
        self.evaluator = evaluator  # scores G (FID) every --eval-every steps, on rank 0
        self.best_fid: float | None = None
        self.speed = speed or Speed()
        sync_bn = config.train.sync_bn
        self.G = speeds.to_memory_format(
            distributed.prepare(generator, self.dist, sync_bn).to(device), self.speed
        )
        self.D = speeds.to_memory_format(
            distributed.prepare(discriminator, self.dist, sync_bn).to(device), self.speed
        )
        o = config.optim
        self.opt_g = speeds.adam(list(self.G.parameters()), o.lr_g, (o.beta1, o.beta2), device)
        self.opt_d = speeds.adam(list(self.D.parameters()), o.lr_d, (o.beta1, o.beta2), device)
        self.scaler_g = speeds.grad_scaler(device, self.speed)
        self.scaler_d = speeds.grad_scaler(device, self.speed)
        self.batches = batches
        self.step = 0
        self._latest: StepStats | None = None
        self._new_best, self._saved_step = False, -1
        decay = config.train.ema_decay
        self.G_ema = make_ema(self.G, decay) if decay > 0 else None
        # Training passes go through torch.compile's wrappers (--compile) and DDP; the bare
        # modules hold the weights. G's pass uses D without DDP (no gradient for D there).
        self.D_forward = speeds.maybe_compile(self.D, self.speed)
        # A discriminator without batch statistics may score reals and fakes in one pass:
        # the same losses and gradients, half the calls (it declares this itself).
        self.joint_d = bool(getattr(discriminator, "batch_independent", False))
        self.G_train = distributed.wrap(speeds.maybe_compile(self.G, self.speed), self.dist, device)
        self.D_train = distributed.wrap(self.D_forward, self.dist, device)
        # Latents come from their own generator, identical on every process, each taking
        # its slice: N processes x batch B draw exactly what one process x batch N*B would.
        self.latent_rng = torch.Generator(device=device).manual_seed(config.train.seed + 3)
        image_shape = tuple(batches.images.shape[1:])
        # Grid latents are drawn once per run from their own generator and reused for every grid.
        gen = torch.Generator().manual_seed(config.train.seed + 1)
        count = images.grid_count(image_shape)
        self.fixed_latents = torch.randn(count, *self.G.latent_shape, generator=gen).to(device)

    # ---- sizes -------------------------------------------------------------------------
    @property
    def images_per_step(self) -> int:
        """The global batch: micro-batch x accumulation steps x processes."""
        o = self.config.optim
        return o.batch_size * o.accumulation_steps * self.dist.world_size

    def total_steps(self) -> int:
        t = self.config.train
        if t.max_steps is not None and t.epochs is None:
            return t.max_steps
        by_epochs = math.ceil((t.epochs or 1) * self.batches.num_images / self.images_per_step)
        return min(by_epochs, t.max_steps) if t.max_steps is not None else by_epochs

    def latents(self, count: int) -> torch.Tensor:
        world, rank = self.dist.world_size, self.dist.rank
        z = torch.randn(
            count * world, *self.G.latent_shape, device=self.device, generator=self.latent_rng
        )
        return z[rank * count : (rank + 1) * count] if world > 1 else z

    def autocast(self):
        return speeds.autocast(self.device, self.speed)

    def _sync_unless_last(self, module: nn.Module, index: int, count: int):
        """DDP's no_sync() for all but the last micro-batch: one all-reduce per step."""
        if index < count - 1 and hasattr(module, "no_sync"):
            return module.no_sync()
        return contextlib.nullcontext()

    # ---- one optimisation step ---------------------------------------------------------
    def d_backward(
        self, reals: list[torch.Tensor], latents: list[torch.Tensor], keep_fakes: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Accumulate D's gradient over micro-batches, each loss scaled by 1/K."""
        k = len(reals)
        total = real_p = fake_p = torch.zeros((), device=self.device)
        fakes = []
        for i, (real, z) in enumerate(zip(reals, latents, strict=True)):
            # With one micro-batch G's graph is kept for its own update; with K it is
            # rebuilt later so that memory stays at one micro-batch's worth.
            with torch.set_grad_enabled(keep_fakes), self.autocast():
                fake = self.G_train(z)
            with self._sync_unless_last(self.D_train, i, k):
                with self.autocast():
                    if self.joint_d:
                        logits = self.D_train(torch.cat([real, fake.detach()]))
                        real_logits, fake_logits = logits[: len(real)], logits[len(real) :]
                    else:
                        real_logits, fake_logits = self.D_train(real), self.D_train(fake.detach())
                real_logits, fake_logits = real_logits.float(), fake_logits.float()
                loss = losses.d_bce(real_logits, fake_logits) / k
                self.scaler_d.scale(loss).backward()
            total = total + loss.detach()
            real_p = real_p + torch.sigmoid(real_logits.detach()).mean() / k
            fake_p = fake_p + torch.sigmoid(fake_logits.detach()).mean() / k
            if keep_fakes:
                fakes.append(fake)
        return total, real_p, fake_p, fakes

    def g_backward(self, latents: list[torch.Tensor], fakes: list[torch.Tensor]) -> torch.Tensor:
        """Accumulate G's gradient (non-saturating loss) through the just-updated D."""
        k = len(latents)
        total = torch.zeros((), device=self.device)
        self.D.requires_grad_(False)  # no weight gradients for D in G's pass
        try:
            for i, z in enumerate(latents):
                with self._sync_unless_last(self.G_train, i, k):
                    # A fresh autocast context: D's low-precision weights are cast again
                    # after its update (the cast cache lives as long as the context).
                    with self.autocast():
                        fake = fakes[i] if fakes else self.G_train(z)
                        logits = self.D_forward(fake)
                    loss = losses.g_nonsaturating(logits.float()) / k
                    self.scaler_g.scale(loss).backward()
                total = total + loss.detach()
        finally:
            self.D.requires_grad_(True)
        return total

    def train_step(self) -> StepStats:
        o = self.config.optim
        reals = [self.batches.next() for _ in range(o.accumulation_steps)]
        latents = [self.latents(o.batch_size) for _ in range(o.accumulation_steps)]
        # 1. Discriminator: reals -> 1, fakes -> 0; one optimizer step per K micro-batches.
        self.opt_d.zero_grad(set_to_none=True)
        d_loss, d_real, d_fake, fakes = self.d_backward(reals, latents, o.accumulation_steps == 1)
        self.scaler_d.step(self.opt_d)  # fp16: skips a step with inf gradients, no host sync
        self.scaler_d.update()
        # 2. Generator: make D call the same fakes real.
        self.opt_g.zero_grad(set_to_none=True)
        g_loss = self.g_backward(latents, fakes)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        if self.G_ema is not None:
            self.G_ema.update_parameters(self.G)
        self.step += 1
        self._latest = StepStats(d_loss, g_loss, d_real, d_fake)
        return self._latest

    # ---- the loop ----------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        total = self.total_steps()
        t = self.config.train
        if self.step >= total:
            logger.warning(
                "The run is already at step {} of {}; raise --max-steps or --epochs to train on.",
                self.step,
                total,
            )
            return {
                "step": self.step,
                "seconds": 0.0,
                "last": {},
                "checkpoint": None,
                "interrupted": False,
            }
        if self.paths is not None and self.step == 0:
            images.save_grid(self._reals_for_grid(), self.paths.assets / "reals.png")
        sums: dict[str, torch.Tensor] = {}
        window_start, window_steps = time.perf_counter(), 0
        last_record: dict[str, Any] = {}
        started = time.perf_counter()
        stops, stopping = StopRequests(), False
        try:
            with stops, TrainingProgress(total, self.step, self.dist.is_main) as progress:
                while self.step < total and not stopping:
                    stats = self.train_step()
                    for name, value in vars(stats).items():
                        sums[name] = sums[name] + value if name in sums else value
                    window_steps += 1
                    progress.advance()
                    eval_now = bool(t.eval_every) and (
                        self.step % t.eval_every == 0 or self.step == total
                    )
                    log_now = self.step % t.log_every == 0 or self.step == total or eval_now
                    if log_now:
                        now = time.perf_counter()
                        scores = self._evaluate() if eval_now else {}
                        last_record = self._log(sums, window_steps, now - window_start, scores)
                        progress.show(last_record)
                        sums, window_start, window_steps = {}, time.perf_counter(), 0
                    # Processes agree on stopping at logging steps (already a sync point).
                    limit = (
                        t.time_limit is not None and time.perf_counter() - started > t.time_limit
                    )
                    wants_stop = stops.requested or limit
                    if not self.dist.active:
                        stopping = wants_stop
                    elif log_now:
                        stopping = distributed.any_true(wants_stop, self.dist, self.device)
                    if stopping and window_steps:  # the steps since the last log line
                        now = time.perf_counter()
                        last_record = self._log(sums, window_steps, now - window_start)
                        sums, window_steps = {}, 0
                    if self.step % t.sample_every == 0:
                        self.save_samples()
                    new_best = self._new_best
                    if self.dist.active:  # every process must join the checkpoint's gather
                        new_best = eval_now and distributed.any_true(
                            new_best, self.dist, self.device
                        )
                    if self.step % t.checkpoint_every == 0 or new_best:
                        self.save_checkpoint()
        except torch.cuda.OutOfMemoryError:
            release_cached_memory(self.device)
            raise GanError(
                f"CUDA ran out of memory at --batch-size {self.config.optim.batch_size}; lower "
                "--batch-size or raise --accumulation-steps (same effective batch, less memory)."
            ) from None
        if stopping and stops.requested:
            logger.warning("Stop requested: saving a checkpoint at step {}.", self.step)
        elif stopping:
            logger.info("--time-limit reached at step {}.", self.step)
        if self.step % t.sample_every:
            self.save_samples()
        saved = self.step % t.checkpoint_every == 0 or self._saved_step == self.step
        path = None if saved else self.save_checkpoint()
        release_cached_memory(self.device)
        elapsed = time.perf_counter() - started
        return {
            "step": self.step,
            "seconds": elapsed,
            "last": last_record,
            "checkpoint": path,
            "interrupted": stops.requested,
        }
