"""The configuration, torch-free: each option declared once (`options`, `sections`), its
values (`values`), the TOML file (`file`), the catalog of names (`catalog`), and `Config`
itself (`core`). Only this package and the plan (`gan.training.plan`) change a `Config`."""

from gan.config.core import FIELDS, SECTIONS, Config
from gan.config.given import Chosen
from gan.config.sections import DataConfig, ModelConfig, OptimConfig
from gan.config.tracking import TrackConfig
from gan.config.training import TrainConfig

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
