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
    from gan.outputs.evaluate import evaluate
    from gan.outputs.generator import Generator
    from gan.training.api import train
    from gan.training.run import TrainResult


def load_generator(path: Any, device: str = "auto") -> Generator:
    """A checkpoint's generator (its moving average), ready to `.sample(n)` images."""
    from gan.outputs.generator import Generator

    return Generator(path, device)


def __getattr__(name: str) -> Any:
    if name == "train":  # a plain function: gan train's flags as keywords
        from gan.training.api import train

        return train
    if name == "evaluate":  # gan evaluate's own function
        from gan.outputs.evaluate import evaluate

        return evaluate
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
