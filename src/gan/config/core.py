"""Run configuration: each option declared once, as a dataclass field with its metadata.

The sections and their options are declared in `gan.config.sections`; the command line, config
files (`gan.config.file`) and `Config.validate` all read the metadata from there.
Importing this module does not load torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gan.config.options import Field, all_fields
from gan.config.sections import DataConfig, ModelConfig, OptimConfig
from gan.config.tracking import TrackConfig
from gan.config.training import TrainConfig
from gan.errors import GanError


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    track: TrackConfig = field(default_factory=TrackConfig)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain values (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Config:
        """Rebuild a saved config (run.json, a checkpoint), ignoring keys this version lacks."""
        sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        for f in FIELDS.values():
            saved = raw.get(f.section) or {}
            if f.name in saved:
                value = saved[f.name]
                sections[f.section][f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**{name: SECTIONS[name](**values) for name, values in sections.items()})

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Config:
        """The defaults with `section.field` keys set to the given (checked) values."""
        return cls().replace(values)

    def get(self, key: str) -> Any:
        section, name = key.split(".")
        return getattr(getattr(self, section), name)

    def replace(self, values: dict[str, Any]) -> Config:
        """A copy with `section.field` keys set to the given values."""
        parts = {name: dataclasses.replace(getattr(self, name)) for name in SECTIONS}
        for key, value in values.items():
            section, name = key.split(".")
            setattr(parts[section], name, value)
        return Config(**parts)

    def validate(self) -> None:
        """Every option within its declared bounds (the checks the command line makes)."""
        for f in FIELDS.values():
            try:
                f.check(self.get(f.key))
            except ValueError as exc:
                raise GanError(f"{f.flag}: {exc}.") from None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
    "track": TrackConfig,
}
FIELDS: dict[str, Field] = {f.key: f for f in all_fields(Config)}
