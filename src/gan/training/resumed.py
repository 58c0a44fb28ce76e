"""The checkpoint a run goes on from, and the plan's first phase with it.

Where a resumed run writes (workdir, run name) never comes from inside the checkpoint:
the command line's, else the run whose folder holds it (`gan.runs.resume`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from gan import distributed
from gan.config import Config
from gan.errors import DoesNotFit, GanError
from gan.runs.origin import init_from
from gan.runs.resume import Found, find_resume, in_workdir, resume_target
from gan.training import plan as plans
from gan.training.transfer import Source, load_source, model_options


@dataclass
class Resumed:
    """The checkpoint a run goes on from (None for a new run)."""

    state: dict[str, Any] | None = None
    path: Path | None = None
    init: Source | None = None  # a new run's --init-from checkpoint

    @property
    def step(self) -> int:
        return int(self.state["step"]) if self.state is not None else 0

    @property
    def origin(self) -> dict[str, Any] | None:
        """The --init-from record the run keeps in every checkpoint and run.json: a new
        run's from its source, a resumed run's from the checkpoint it goes on from."""
        if self.init is not None:
            return self.init.record()
        return init_from(self.state.get("init_from")) if self.state is not None else None

    def check_world_size(self, info: distributed.DistInfo) -> None:
        """A resumed run has the processes it was trained by."""
        if self.state is None:
            return
        trained = self.state["loop"].get("world_size", 1)
        if type(trained) is not int or trained < 1:
            raise DoesNotFit(self.path, f"it was trained by {str(trained)[:20]} processes")
        if trained != info.world_size:
            raise GanError(
                f"{self.path} was trained by {trained} process(es) and this run has "
                f"{info.world_size}; resume with the same number (the data order and the "
                "global batch depend on it)."
            )


def plan_before_data(
    config: Config,
    resume: str | None,
    chosen: dict[str, str],
    check: bool = True,
    skip: Collection[Path] = (),
) -> tuple[plans.Plan, Resumed]:
    """Phase 1 of the plan (`plans.before_data`, `check` as it takes it), with the
    checkpoint to resume from, if any (`--resume auto` passes over those in `skip`)."""
    found = _find(config, resume, skip) if resume is not None else None
    if found is None:
        if config.train.init_from is None:
            if config.train.init_sha256 is not None:
                raise GanError("--init-sha256 checks the file --init-from names; give both.")
            return plans.before_data(config, chosen, check=check), Resumed()
        source = load_source(config.train.init_from)
        inherited = model_options(source, config, chosen)
        plan = plans.before_data(config, chosen, check=check, inherited=inherited)
        return plan, Resumed(init=source)
    t = config.train
    workdir = t.workdir if "train.workdir" in chosen else None
    target = resume_target(found, workdir, t.run_name if "train.run_name" in chosen else None)
    outputs = {"train.workdir": str(target.workdir), "train.run_name": target.name}
    saved, resumed = Config.from_dict(found.state["config"]), Resumed(found.state, found.path)
    if not in_workdir(found, target) and "data.source" not in chosen:
        _check_handed_source(found.path, saved)
    plan = plans.before_data(config, chosen, saved, outputs, resumed.step, check=check)
    return plan, resumed


def _check_handed_source(path: Path, saved: Config) -> None:
    """A checkpoint from outside the workdir's run folders (handed over, copied from
    elsewhere) does not choose where data is read: a path or an address it names needs
    --data (as `gan evaluate` asks); the dataset's own place (MNIST in ./data, the bundled
    MRI sample) it may name."""
    if saved.data.source is not None:
        raise GanError(
            f"{path} was trained on the data at {str(saved.data.source)[:200]!r}, and a "
            "checkpoint from outside this workdir's runs does not choose where data is read; "
            "give --data with the place of the images to continue it on (nothing was changed)."
        )


def _find(config: Config, resume: str, skip: Collection[Path]) -> Found | None:
    t = config.train
    found = find_resume(Path(t.workdir).expanduser(), t.run_name, resume, skip)
    if found is None:  # only --resume auto-or-new gets here: auto raises
        logger.info("No checkpoint to resume from; starting a new run.")
    return found
