"""The configuration, torch-free: each option declared once (`options`, `sections`), its
values (`values`), the TOML file (`file`), the catalog of names (`catalog`), and `Config`
itself (`core`). Only this package and the plan (`gan.train.plan`) change a `Config`."""

from gan.config.core import FIELDS, SECTIONS, Chosen, Config
from gan.config.sections import DataConfig, ModelConfig, OptimConfig, TrainConfig
from gan.config.tracking import TrackConfig

__all__ = [
    "FIELDS",
    "SECTIONS",
    "Chosen",
    "Config",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "TrackConfig",
    "TrainConfig",
]
