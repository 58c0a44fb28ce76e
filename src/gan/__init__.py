"""gan: train GANs from the command line, or from Python (docs/api.md):

    import gan

    result = gan.train(dataset="mnist", data="../shared/data", max_steps=2000)
    generator = gan.load_generator(result.checkpoint)
    images = generator.sample(16, label=7)  # uint8, 16 x 28 x 28 x 1
    scores = gan.evaluate(result.checkpoint, num_samples=2000)

Importing gan loads nothing heavy: each name below imports its part on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Config",
    "Generator",
    "TrainResult",
    "__version__",
    "evaluate",
    "load_generator",
    "train",
]

if TYPE_CHECKING:
    from gan.outputs.generator import Generator
    from gan.training.run import TrainResult


def train(config: Any = None, *, resume: str | None = None, **options: Any) -> TrainResult:
    """Train a run (or continue one with `resume="auto"` or a checkpoint path), as `gan
    train` does: `gan train`'s flags as keywords (`dataset="mri"`, `max_steps=200`), over
    `config` (a `Config`, or the path of a TOML file). Returns a `TrainResult`."""
    from gan.training.api import train as run

    return run(config, resume=resume, **options)


def load_generator(path: Any, device: str = "auto") -> Generator:
    """A checkpoint's generator (its moving average), ready to `.sample(n)` images."""
    from gan.outputs.generator import Generator

    return Generator(path, device)


def evaluate(
    checkpoint: Any,
    *,
    data: str | None = None,
    num_samples: int = 10_000,
    metrics: str | tuple[str, ...] = "fid,kid,pr",
    features: str | None = None,
    features_weights: str | None = None,
    batch_size: int = 250,
    seed: int = 12345,
    device: str = "auto",
    report: bool = True,
) -> dict[str, Any]:
    """Score a checkpoint as `gan evaluate` does (FID, KID, precision/recall; "nn" for
    the copy check); with `report`, also write the run's eval-<step>-<what>.json."""
    from pathlib import Path

    from gan.metrics.evaluate import parse_metrics
    from gan.outputs.evaluate import evaluate_checkpoint, write_report

    names = parse_metrics(metrics if isinstance(metrics, str) else ",".join(metrics))
    result = evaluate_checkpoint(
        Path(checkpoint), data, num_samples, names, features, features_weights, batch_size,
        device, seed,
    )  # fmt: skip
    if report:
        write_report(Path(checkpoint), result)
    return result


def __getattr__(name: str) -> Any:
    if name == "Config":
        from gan.config import Config

        return Config
    if name == "Generator":
        from gan.outputs.generator import Generator

        return Generator
    if name == "TrainResult":
        from gan.training.run import TrainResult

        return TrainResult
    raise AttributeError(f"module 'gan' has no attribute {name!r}")
