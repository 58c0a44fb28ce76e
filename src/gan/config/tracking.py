"""The `[track]` section: which experiment trackers a run reports to (TensorBoard, W&B,
MLflow) and where. Declared like every other section (`gan.config.sections`); importing
this module does not load torch or any tracker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gan.config.options import option
from gan.config.values import names_or_none

TRACK = "Experiment trackers (docs/tracking.md)"


def tracker_names(value: Any) -> str:
    """A comma-separated list of the catalog's trackers (e.g. tensorboard,wandb), or none."""
    from gan.config.catalog import TRACKERS

    return names_or_none(value, TRACKERS, "a list of")


def _optional_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise ValueError(f"{value!r} is not a name or address")
    return value.strip()


@dataclass(kw_only=True)
class TrackConfig:
    tracker: str = option(
        "tensorboard",
        "Where the run's scalars, grids, config and summary go besides history.jsonl: a "
        "list of tensorboard, wandb, mlflow (wandb and mlflow: uv sync --extra trackers), "
        "or none.",
        convert=tracker_names,
        panel=TRACK,
        metavar="LIST",
    )
    tracker_artifacts: bool = option(
        False,
        "Also upload the final last.pt to W&B and MLflow (off: checkpoints can be large).",
        panel=TRACK,
    )
    wandb_project: str | None = option(
        None,
        "W&B project (default: WANDB_PROJECT, else gan). Without an API key the run is "
        "logged offline, for a later wandb sync.",
        convert=_optional_text,
        panel=TRACK,
    )
    wandb_entity: str | None = option(
        None,
        "W&B entity: team or user (default: WANDB_ENTITY).",
        convert=_optional_text,
        panel=TRACK,
    )
    mlflow_uri: str | None = option(
        None,
        "MLflow tracking server or store (default: MLFLOW_TRACKING_URI, else a SQLite store "
        "in <workdir>/mlruns).",
        convert=_optional_text,
        panel=TRACK,
        metavar="URI",
    )
    mlflow_experiment: str | None = option(
        None,
        "MLflow experiment (default: the dataset's name).",
        convert=_optional_text,
        panel=TRACK,
    )

    def names(self) -> list[str]:
        """The trackers asked for, in order ([] for none)."""
        return [] if self.tracker == "none" else self.tracker.split(",")
