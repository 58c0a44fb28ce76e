"""The Trainer's checkpoint side: what a resume needs, written only when it is sound."""

from __future__ import annotations

from typing import Any

import torch
from loguru import logger

from gan import checkpoint, distributed, rng, speed
from gan.devices import release_cached_memory
from gan.errors import GanError


class CheckpointMixin:
    """State dicts, exact restore and atomic saves for `gan.trainer.Trainer`."""

    def state_dict(self, rng_states: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Everything a resume needs, as tensors and plain values (RNGs of every process)."""
        rng_states = rng_states or [rng.capture(self.device)]
        return {
            "format_version": checkpoint.FORMAT_VERSION,
            "step": self.step,
            "epoch": self.batches.epoch,
            "images_seen": self.batches.position,
            "run_name": self.paths.name if self.paths else None,
            "config": self.config.to_dict(),
            **self.meta,
            "generator": self.G.state_dict(),
            "generator_ema": self.G_ema.module.state_dict() if self.G_ema is not None else None,
            "ema_updates": int(self.G_ema.n_averaged) if self.G_ema is not None else 0,
            "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),  # fp16's loss scales ({} otherwise)
            "scaler_d": self.scaler_d.state_dict(),
            "fixed_latents": self.fixed_latents.cpu(),
            "rng": rng_states[0],
            "rng_ranks": rng_states,
            "latent_rng": self.latent_rng.get_state(),
            "world_size": self.dist.world_size,
            "best_fid": self.best_fid,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where a checkpoint left off: weights, optimizers, data, RNGs."""
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        for optimizer, key in ((self.opt_g, "opt_g"), (self.opt_d, "opt_d")):
            speed.load_optimizer(optimizer, state[key])
        for scaler, key in ((self.scaler_g, "scaler_g"), (self.scaler_d, "scaler_d")):
            if scaler.is_enabled() and state.get(key):  # an fp16 run resumed in fp16
                scaler.load_state_dict(state[key])
        if self.G_ema is not None and state.get("generator_ema") is not None:
            self.G_ema.module.load_state_dict(state["generator_ema"])
            self.G_ema.n_averaged = int(state.get("ema_updates", 0))
        self.step = int(state["step"])
        self.best_fid = state.get("best_fid")
        self.batches.position = int(state["images_seen"])
        self.fixed_latents = state["fixed_latents"].to(self.device)
        ranks = state.get("rng_ranks") or [state["rng"]]
        try:
            rng.restore(
                ranks[self.dist.rank] if len(ranks) > self.dist.rank else ranks[0], self.device
            )
            if state.get("latent_rng") is not None:
                self.latent_rng.set_state(state["latent_rng"])
        except RuntimeError:  # a checkpoint from another kind of device
            logger.warning(
                "Random states were not restored (the checkpoint is from another device)."
            )

    def _diverged(self, since: int) -> None:
        span = f"step {self.step}" if since >= self.step else f"steps {since}-{self.step}"
        raise GanError(
            f"Training diverged: a loss became NaN or infinite in {span}; lower --lr-g/--lr-d "
            "and resume from the last checkpoint, which is untouched."
        )

    def save_checkpoint(self):
        """A collective under DDP: every process hands over its RNG state; rank 0 writes."""
        latest = self._latest
        if latest is not None and not bool(torch.isfinite(latest.d_loss + latest.g_loss)):
            self._diverged(self.step)  # never overwrite good checkpoints with NaN weights
        rng_states = distributed.gather(rng.capture(self.device), self.dist)
        if self.paths is None or not self.dist.is_main:
            return None
        path = checkpoint.save_atomic(
            self.state_dict(rng_states), checkpoint.step_path(self.paths.checkpoints, self.step)
        )
        checkpoint.publish(path, self.paths.last)
        if self._new_best:
            checkpoint.publish(path, self.paths.checkpoints / "best.pt")
            logger.info("New best FID {:.4g} at step {}: {}", self.best_fid, self.step, "best.pt")
            self._new_best = False
        self._saved_step = self.step
        checkpoint.prune(self.paths.checkpoints, self.config.train.keep_checkpoints)
        release_cached_memory(self.device)
        logger.info("Saved checkpoint {}", path)
        return path
