"""The plan: a run's config and its schedule, resolved once, in phases of pure functions.

- **Before the data** (`before_data`): the options given (flags, a `--config` file, a
  library call), merged into the resumed checkpoint's config, or else completed by the
  dataset's own defaults, trackers and data caching from the flags alone (`handed`); then
  the dataset's model, length and image size.
- **Once the data is loaded** (`after_data`): augmentation for small data, no labels for
  data without them (new runs only), the image size the data has, and the schedule
  (`gan.training.schedule`): the run's length and all that follows it.
- **For a --time-budget, once the run is built** (`gan.training.budget.fit`): a warm-up
  fixes the length, and `budgeted` the schedule.

Each step returns the options it sets; a phase applies them with one `Config.replace` and
records which step set each (`Plan.sources`, written to run.json; the labels are
`gan.config.given`'s). Each check runs once. Nothing else changes a `Config`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gan.config import FIELDS, Config
from gan.config.given import (
    ARGUMENT,
    BUDGET_SET,
    DATA,
    DATASET,
    FLAG,
    INIT_FROM,
    LABELS,
    RESUMED,
    RUN_FOLDER,
    SMALL_DATA,
    USER,
)
from gan.errors import GanError
from gan.training import handed
from gan.training import schedule as schedules
from gan.training.checks import (
    check_before_data,
    check_fits,
    check_labels,
    check_limits,
    check_options,
    check_same_data,
)
from gan.training.fitting import check_own_size
from gan.training.rules import (
    Changes,
    dataset_defaults,
    dataset_resolution,
    labels,
    plain,
    resumed_options,
    small_data,
)


@dataclass(frozen=True)
class Plan:
    """A resolved config, where each of its options came from, what was checked, and (once
    the data is loaded) the schedule."""

    config: Config
    sources: dict[str, str] = field(default_factory=dict)
    resumed: bool = False
    checked: tuple[Any, ...] | None = None  # the model fit checked, to check it once
    schedule: schedules.Schedule | None = None  # once the data is loaded
    basis: schedules.Basis | None = None  # what the schedule was resolved from

    def recorded(self) -> dict[str, str]:
        """The step that set each option that differs from its declared default."""
        return {
            key: self.sources.get(key, RESUMED if self.resumed else "default")
            for key, f in FIELDS.items()
            if plain(self.config.get(key)) != plain(f.default)
        }


class _View:
    """The config as the steps so far have changed it, without building it."""

    def __init__(self, base: Config, changes: Changes) -> None:
        self.base, self.changes = base, changes

    def get(self, key: str) -> Any:
        return self.changes[key] if key in self.changes else self.base.get(key)


# ---- phase 1: before the data ----------------------------------------------------------------


def before_data(
    given: Config,
    chosen: Mapping[str, str],
    saved: Config | None = None,
    outputs: Changes | None = None,
    step: int = 0,
    check: bool = True,
    inherited: Changes | None = None,
) -> Plan:
    """Phase 1, for a validated `given`. `saved`: the config of the checkpoint a run
    resumes at `step` (validated when it was loaded); `outputs`: where it goes on (workdir
    and run name, never taken from the checkpoint). `check`: also the checks that build
    the model (torch); without, only those of the length (a dry run's). `inherited`: a new
    run's model options from its --init-from checkpoint, over the dataset's defaults."""
    sources = dict(chosen)
    if saved is None:
        base, changes = given, dataset_defaults(given, chosen)
        sources |= dict.fromkeys(changes, DATASET)
        changes |= inherited or {}
        sources |= dict.fromkeys(inherited or {}, INIT_FROM)
    else:
        base, changes = saved, resumed_options(saved, given, chosen, step) | (outputs or {})
    changes |= handed.from_here(given, saved, sources, (FLAG, ARGUMENT))  # never a file's
    changes |= _only_new(dataset_resolution(_View(base, changes)), base, changes, sources)
    config = base.replace(changes)
    if not check:  # a dry run's: no model is built
        check_options(config)
        return Plan(config, sources, saved is not None)
    return Plan(config, sources, saved is not None, check_before_data(config))


def _only_new(found: Changes, base: Config, changes: Changes, sources: dict[str, str]):
    view = _View(base, changes)
    new = {key: value for key, value in found.items() if view.get(key) != value}
    sources |= dict.fromkeys(new, DATASET)
    return new


# ---- phase 2: once the data is loaded --------------------------------------------------------


def after_data(
    plan: Plan,
    data: Any,
    state: dict[str, Any] | None = None,
    path: Any = None,
    world_size: int = 1,
) -> Plan:
    """Phase 2: the rules that need the loaded data (new runs only), the data's image size,
    the checks that need the data, and the schedule on `world_size` processes. `state`: the
    resumed checkpoint, whose data must be the same and whose schedule goes on."""
    config, sources, changes = plan.config, dict(plan.sources), {}
    if not plan.resumed:
        chosen = {k: v for k, v in sources.items() if v in USER}
        steps: tuple[tuple[Callable[..., Changes], str], ...] = (
            (small_data, SMALL_DATA),
            (labels, LABELS),
        )
        for step, name in steps:
            found = step(_View(config, changes), data, chosen)
            changes |= found
            sources |= dict.fromkeys(found, name)
    size = tuple(data.images.shape[2:])
    if tuple(config.data.image_size or ()) != size:
        changes["data.image_size"] = size
        sources["data.image_size"] = DATA
    config = config.replace(changes)
    image_shape = tuple(data.images.shape[1:])
    try:
        checked = check_fits(config, image_shape, plan.checked)
    except GanError:
        if sources.get("data.image_size") == DATA:  # the images' own size: say what fits
            check_own_size(config, image_shape, data.source)
        raise
    classes = len(data.classes) if config.model.conditional else 0
    check_limits(config, image_shape, len(data.images), classes)  # with the data, this time
    check_labels(config, data)
    if state is not None:
        check_same_data(data, state, path)
    basis = _basis(config, len(data.images), world_size, state, sources)
    resolved = Plan(config, sources, plan.resumed, checked, basis=basis)
    return _scheduled(resolved)


def _basis(
    config: Config, images: int, world_size: int, state: dict[str, Any] | None, sources
) -> schedules.Basis:
    """What the schedule is resolved from: for a resume, the schedule the checkpoint was
    on (one from before schedules were recorded: the one its config gives)."""
    if state is None:
        return schedules.Basis(images, world_size)
    step, saved = int(state["step"]), Config.from_dict(state["config"])
    before = schedules.recorded(state.get("schedule"), saved, schedules.Basis(images, world_size))
    given = sources.get("optim.ada_ramp") in USER
    return schedules.Basis(images, world_size, step, before, ramp_given=given)


def _scheduled(plan: Plan, fitted: dict[str, Any] | None = None) -> Plan:
    """The plan with its schedule; a resume on a new length says what the rates do."""
    schedule = schedules.resolve(plan.config, plan.basis, fitted)
    note = schedules.continued(schedule, plan.basis.before, plan.basis.step)
    if note is not None:
        from loguru import logger  # here: gan --help does not load it

        logger.info(note)
    return replace(plan, schedule=schedule)


def named(plan: Plan, run_name: str) -> Plan:
    """The plan with the name of the folder the run writes into."""
    if plan.config.train.run_name == run_name:
        return plan
    sources = {**plan.sources, "train.run_name": plan.sources.get("train.run_name", RUN_FOLDER)}
    return replace(plan, config=plan.config.replace({"train.run_name": run_name}), sources=sources)


def budgeted(plan: Plan, fitted: dict[str, Any]) -> Plan:
    """The plan with the steps its --time-budget's warm-up fixed (`fitted`, what it
    measured and planned)."""
    sources = {**plan.sources, "train.planned_steps": BUDGET_SET}
    config = plan.config.replace({"train.planned_steps": fitted["planned_steps"]})
    return _scheduled(replace(plan, config=config, sources=sources), fitted)


def stopped_at(config: Config, step: int) -> Config:
    """A run stopped by its time limit or a signal, as config.toml records it: trained to
    this step, with the same planned length (schedules that follow it, ADA's ramp, match)."""
    return config.replace({"train.stop_at": step, "train.time_limit": None})
