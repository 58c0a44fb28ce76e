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
from gan.config.catalog import DATASETS, MODELS
from gan.config.given import (
    ARGUMENT,
    BUDGET_SET,
    DATA,
    DATASET,
    FILE,
    FLAG,
    LABELS,
    LENGTH,
    RESUMED,
    RUN_FOLDER,
    SMALL_DATA,
    USER,
)
from gan.errors import GanError
from gan.training import handed
from gan.training import schedule as schedules
from gan.training.checks import (
    check_budget,
    check_growth,
    check_labels,
    check_limits,
    check_penalties,
    check_same_data,
)

Changes = dict[str, Any]

# The dataset's own length, in whichever form, goes when the user gives one: mri's is its
# epochs stopped by --time-limit.
DATASET_LENGTH = LENGTH | {"train.time_limit"}
SMALL_DATA_IMAGES = 2000  # fewer images than this: augmentation by default (ADA's regime)
SMALL_DATA_AUGMENT = "translation,cutout"


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
            if _plain(self.config.get(key)) != _plain(f.default)
        }


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class _View:
    """The config as the steps so far have changed it, without building it."""

    def __init__(self, base: Config, changes: Changes) -> None:
        self.base, self.changes = base, changes

    def get(self, key: str) -> Any:
        return self.changes[key] if key in self.changes else self.base.get(key)


# ---- phase 1: before the data ----------------------------------------------------------------


def resumed_options(
    saved: Config, given: Config, chosen: Mapping[str, str], step: int = 0
) -> Changes:
    """The options the user chose, over the checkpoint's config (resumed at `step`).
    Options that define the run (`fixed` in their declaration) must match it; the rest
    (length, intervals, learning rates, device, data location) may change, and a length
    given in any form replaces the checkpoint's. A resumed run goes on unless told where
    to stop: a --stop-at of a config file at or before `step` (where that run stopped
    before) is not one."""
    for key in sorted(chosen):
        f = FIELDS[key]
        old, new = _plain(saved.get(key)), _plain(given.get(key))
        if f.opt.fixed and new != old:
            raise GanError(
                f"{f.flag} {_show(f, new)} differs from the checkpoint's {_show(f, old)}; a "
                f"resumed run must keep it (drop {f.flag}, or start a new run with another "
                "--run-name)."
            )
    changes = {key: given.get(key) for key in chosen}
    if any(given.get(key) != saved.get(key) for key in LENGTH & set(chosen)):
        changes |= {key: None for key in LENGTH - set(chosen)}
    stop_at = changes.get("train.stop_at")
    if stop_at is not None and chosen["train.stop_at"] == FILE and stop_at <= step:
        from loguru import logger  # here: gan --help does not load it

        logger.info(
            "The config file's stop_at {} is where the run stopped before; the resume trains "
            "on from step {} (give --stop-at to stop it earlier than its plan).",
            stop_at,
            step,
        )
        changes["train.stop_at"] = None
    changes.setdefault("train.stop_at", None)
    return changes


def dataset_defaults(view: Any, chosen: Mapping[str, str]) -> Changes:
    """The dataset's own defaults (catalog `defaults`) for the options the user left unset."""
    spec = DATASETS.get(view.get("data.name"))
    keep = set(chosen)
    if DATASET_LENGTH & keep:  # the user's length replaces the dataset's, whatever its form
        keep |= DATASET_LENGTH
    return {key: value for key, value in spec.defaults if key not in keep}


def dataset_resolution(view: Any) -> Changes:
    """The dataset's model, length (epochs, when no budget is given) and image size."""
    spec = DATASETS.get(view.get("data.name"))
    model = view.get("model.name") or spec.default_model
    MODELS.get(model)  # unknown names fail here with the list of valid ones
    epochs = view.get("train.epochs")
    unplanned = view.get("train.max_steps") is None and view.get("train.time_budget") is None
    if epochs is None and unplanned:
        epochs = spec.default_epochs
    size = view.get("data.image_size") or spec.default_image_size
    return {"model.name": model, "train.epochs": epochs, "data.image_size": size}


def before_data(
    given: Config,
    chosen: Mapping[str, str],
    saved: Config | None = None,
    outputs: Changes | None = None,
    step: int = 0,
    check: bool = True,
) -> Plan:
    """Phase 1, for a validated `given`. `saved`: the config of the checkpoint a run
    resumes at `step` (validated when it was loaded); `outputs`: where it goes on (workdir
    and run name, never taken from the checkpoint). `check`: also the checks that build
    the model (torch); without, only those of the length (a dry run's)."""
    sources = dict(chosen)
    if saved is None:
        base, changes = given, dataset_defaults(given, chosen)
        sources |= dict.fromkeys(changes, DATASET)
    else:
        base, changes = saved, resumed_options(saved, given, chosen, step) | (outputs or {})
    changes |= handed.from_here(given, saved, sources, (FLAG, ARGUMENT))  # never a file's
    changes |= _only_new(dataset_resolution(_View(base, changes)), base, changes, sources)
    config = base.replace(changes)
    if not check:  # a dry run's: no model is built
        check_budget(config.train)
        return Plan(config, sources, saved is not None)
    return Plan(config, sources, saved is not None, _check_before_data(config))


def _only_new(found: Changes, base: Config, changes: Changes, sources: dict[str, str]):
    view = _View(base, changes)
    new = {key: value for key, value in found.items() if view.get(key) != value}
    sources |= dict.fromkeys(new, DATASET)
    return new


# ---- phase 2: once the data is loaded --------------------------------------------------------


def small_data(view: Any, data: Any, chosen: Mapping[str, str]) -> Changes:
    """Adaptive augmentation for a new run on few images, unless the user chose otherwise:
    p starts at 0 and rises only when D starts to tell the reals apart by heart."""
    if len(data.images) >= SMALL_DATA_IMAGES or {"optim.augment", "optim.augment_p"} & set(chosen):
        return {}
    if view.get("optim.augment") != "none":  # the dataset's own defaults already augment
        return {}
    from loguru import logger  # here: gan --help does not load it

    logger.info(
        "{} images (< {}): adaptive augmentation {} (--augment none to turn it off).",
        len(data.images),
        SMALL_DATA_IMAGES,
        SMALL_DATA_AUGMENT,
    )
    return {"optim.augment": SMALL_DATA_AUGMENT, "optim.augment_p": "auto"}


def labels(view: Any, data: Any, chosen: Mapping[str, str]) -> Changes:
    """A dataset whose default is --conditional (mnist) trains without labels when this
    copy of it has none, unless the user asked for --conditional."""
    if not view.get("model.conditional") or "model.conditional" in chosen:
        return {}
    if data.labels is not None:
        return {}
    from loguru import logger  # here: gan --help does not load it

    logger.info("{} has no labels: training without --conditional.", data.source)
    return {"model.conditional": False}


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
    checked = _check_fits(config, image_shape, plan.checked)
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


# ---- checks ----------------------------------------------------------------------------------


def _check_before_data(config: Config) -> tuple[Any, ...] | None:
    """What can be checked before any data is loaded (a long download saved)."""
    check_budget(config.train)
    check_growth(config)
    spec = DATASETS.get(config.data.name)
    if config.model.conditional and spec.labels is None:
        raise GanError(
            f"Dataset {config.data.name!r} has no labels, so --conditional cannot be used; "
            "leave it out, or use a dataset with labels (mnist, bps, or a folder with one "
            "subfolder per class)."
        )
    if config.data.image_size is None:
        return None
    channels = spec.channels or 1  # the channel count does not change which sizes fit
    return _check_fits(config, (channels, *config.data.image_size), None)


def _check_fits(config: Config, image_shape: tuple[int, ...], done: tuple | None) -> tuple:
    """The model makes this size, and the penalties suit it; once per model and size."""
    from gan.models import check_model_fits

    m, o = config.model, config.optim
    key = (m.name, tuple(image_shape[1:]), m.latent_dim, o.loss, o.r1_gamma)
    if key != done:
        check_limits(config, image_shape)  # before check_model_fits gives the model memory
        check_model_fits(m.name, image_shape, m.latent_dim)
        check_penalties(config, image_shape)
    return key


# ---- the same steps, one at a time (for tests and library callers) ----------------------------


def apply_dataset_defaults(config: Config, chosen: frozenset[str]) -> Config:
    return config.replace(dataset_defaults(config, dict.fromkeys(chosen, ARGUMENT)))


def resolve(config: Config) -> Config:
    """The dataset's model, length and image size filled in, validated and checked."""
    config.validate()
    config = config.replace(dataset_resolution(config))
    _check_before_data(config)
    return config


def _show(f: Any, value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, tuple) and f.opt.show is str:
        return "x".join(map(str, value))
    return f.opt.show(value)
