"""Run configuration: plain dataclasses, validated up front, round-tripped through JSON."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from gan.errors import GanError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_image_size(text: str) -> tuple[int, int]:
    """Parse 'HxW' (or a single 'N' for a square) into (height, width)."""
    text = text.strip()
    if text.isdigit():
        height = width = int(text)
    else:
        match = _SIZE.match(text)
        if not match:
            raise GanError(
                f"--image-size {text!r} is not of the form HxW (for example 28x28 or 200x160)."
            )
        height, width = int(match[1]), int(match[2])
    if height < 1 or width < 1:
        raise GanError(f"--image-size {text!r} must have a height and width of at least 1.")
    if height * width > 4096 * 4096:
        raise GanError(f"--image-size {text!r} is too large; use at most 4096x4096.")
    return height, width


@dataclass
class DataConfig:
    name: str = "mnist"
    source: str | None = None  # --data: a path or s3://bucket/prefix; None: dataset default
    image_size: tuple[int, int] | None = None  # None means the dataset's default
    download: bool = False
    # s3:// sources
    no_sign_request: bool = False
    s3_workers: int = 32
    cache_dir: str | None = None  # None: ~/.cache/gan/s3
    no_cache: bool = False
    # bps: metadata filters, split and 16-bit decoding
    particle: str | None = None
    dose: tuple[float, ...] = ()
    hours: tuple[int, ...] = ()
    split: str = "all"
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    clip_percentiles: tuple[float, float] = (0.5, 99.5)


_TUPLE_FIELDS = ("image_size", "dose", "hours", "split_fractions", "clip_percentiles")


@dataclass
class ModelConfig:
    name: str | None = None  # None means the dataset's default model
    latent_dim: int = 100


@dataclass
class OptimConfig:
    batch_size: int = 32
    accumulation_steps: int = 1
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


@dataclass
class TrainConfig:
    epochs: int | None = None  # None means the dataset's default
    max_steps: int | None = None
    time_limit: float | None = None  # seconds of training, then save and stop
    device: str = "auto"
    seed: int = 0
    workdir: str = "."
    run_name: str | None = None
    checkpoint_every: int = 500
    sample_every: int = 250
    log_every: int = 10
    keep_checkpoints: int = 5
    ema_decay: float = 0.999  # 0 turns the moving average of G off
    sync_bn: bool = False  # SyncBatchNorm across processes (torchrun)
    eval_every: int | None = None  # FID every N steps, best.pt kept
    eval_samples: int = 2000
    eval_features: str | None = None  # None: mnist-lenet for 28x28 gray, else random-conv
    precision: str = "auto"  # auto: by device (gan.speed.default_precision)
    channels_last: bool | None = None  # None: by precision and device
    compile: bool = False  # torch.compile the training passes


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain values (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Config:
        """Rebuild a config, ignoring keys this version does not know."""
        sections = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig}
        sections["train"] = TrainConfig
        parts = {}
        for name, section in sections.items():
            known = {f.name for f in dataclasses.fields(section)}
            values = {k: v for k, v in (raw.get(name) or {}).items() if k in known}
            parts[name] = section(**values)
        for name in _TUPLE_FIELDS:
            value = getattr(parts["data"], name)
            if isinstance(value, list):
                setattr(parts["data"], name, tuple(value))
        return cls(**parts)

    def validate(self) -> None:
        """Reject nonsensical numbers before any work starts."""
        o, t, m = self.optim, self.train, self.model
        positive = {
            "--batch-size": o.batch_size,
            "--accumulation-steps": o.accumulation_steps,
            "--latent-dim": m.latent_dim,
            "--checkpoint-every": t.checkpoint_every,
            "--sample-every": t.sample_every,
            "--log-every": t.log_every,
            "--keep-checkpoints": t.keep_checkpoints,
        }
        d = self.data
        positive["--s3-workers"] = d.s3_workers
        if d.s3_workers > 256:
            raise GanError(f"--s3-workers {d.s3_workers} is too many; use at most 256.")
        if d.split not in ("train", "val", "test", "all"):
            raise GanError(f"--split {d.split!r} is not one of train, val, test, all.")
        fractions = d.split_fractions
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            raise GanError("--split-fractions must be three non-negative numbers that sum to 1.")
        low, high = d.clip_percentiles
        if not 0 <= low < high <= 100:
            raise GanError(f"--clip-percentiles {low},{high} must satisfy 0 <= low < high <= 100.")
        if t.epochs is not None:
            positive["--epochs"] = t.epochs
        if t.max_steps is not None:
            positive["--max-steps"] = t.max_steps
        if t.time_limit is not None and not 0 < t.time_limit < 1e9:
            raise GanError(
                f"--time-limit must be a positive number of seconds, got {t.time_limit}."
            )
        if t.eval_every is not None:
            positive["--eval-every"] = t.eval_every
            positive["--eval-samples"] = t.eval_samples - 1  # at least 2
        for flag, value in positive.items():
            if value < 1:
                raise GanError(f"{flag} must be at least 1, got {value}.")
        if t.precision not in PRECISIONS:
            raise GanError(f"--precision {t.precision!r} is not one of {', '.join(PRECISIONS)}.")
        if not 0 <= t.ema_decay < 1:
            raise GanError(f"--ema-decay must be in [0, 1), got {t.ema_decay}.")
        for flag, lr in {"--lr-g": o.lr_g, "--lr-d": o.lr_d}.items():
            if not 0 < lr < 10:
                raise GanError(f"{flag} must be a positive learning rate below 10, got {lr}.")
        if o.batch_size > 65536:
            raise GanError(f"--batch-size {o.batch_size} is too large; use at most 65536.")
        if m.latent_dim > 65536:
            raise GanError(f"--latent-dim {m.latent_dim} is too large; use at most 65536.")
        if t.run_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", t.run_name):
            raise GanError(
                f"--run-name {t.run_name!r} may only use letters, digits, '.', '_' and '-'."
            )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
