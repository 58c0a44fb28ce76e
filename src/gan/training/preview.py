"""`gan train --dry-run`: the plan as it is resolved before any data is read, in words.

Every option not at its default with the step of the plan that set it, the schedule (the
length, when the learning rate decays, ADA's ramp, the grid and checkpoint steps, the
growth stages) and the model's size; with --resume, what the resume changes. Nothing is
trained, loaded or written, and a new run's preview loads no torch (the checks that build
the model run when training starts): a length in epochs is given in epochs until the
data is counted, a --time-budget's until its warm-up.
"""

from __future__ import annotations

import math
from typing import Any

from gan.config import FIELDS, Config
from gan.config.catalog import DATASETS
from gan.config.given import sources_of
from gan.config.values import seconds_text
from gan.training import plan as plans
from gan.training import schedule as schedules
from gan.training.handed import as_flag

ROW = "  {:<15} {}"  # a line of the schedule: what, then its value


def preview(config: Config, resume: str | None = None, chosen: Any = None) -> str:
    """The plan `gan train` would follow with these options (see the module's doc)."""
    config.validate()
    sources = sources_of(config, chosen)
    state, lines = None, ["Plan of a new run (a dry run: nothing is trained or written)."]
    if resume is None and config.train.init_from is None:
        plan = plans.before_data(config, sources, check=False)
    else:
        from gan.training.resumed import plan_before_data  # reads a checkpoint (torch)

        plan, resumed = plan_before_data(config, resume, sources, check=False)
        if resumed.state is not None:
            state, lines = resumed.state, _resume_lines(plan, resumed, sources)
        elif resumed.init is not None:
            step = int(resumed.init.state["step"])
            lines.append(
                f"It starts from the G, D and G's moving average of {resumed.init.path} "
                f"(step {step}, sha256 {resumed.init.sha256[:16]}...)."
            )
    lines += ["", "Options not at their defaults, and where each came from:", *_options(plan)]
    lines += ["", "Schedule:", *_schedule(plan.config, state), "", _model(plan.config, state)]
    return "\n".join(lines)


def _resume_lines(plan: plans.Plan, resumed: Any, sources: dict[str, str]) -> list[str]:
    saved = Config.from_dict(resumed.state["config"])
    changed = [
        f"  {as_flag(f, plan.config.get(key))} (was {as_flag(f, saved.get(key))})"
        for key, f in FIELDS.items()
        if key in sources and plan.config.get(key) != saved.get(key)
    ]
    return [
        f"Plan of resuming {resumed.path} at step {resumed.step:,} as run "
        f"{plan.config.train.run_name!r} (a dry run: nothing is trained or written).",
        "",
        "What the resume changes of the checkpoint's options:",
        *(changed or ["  nothing"]),
    ]


def _options(plan: plans.Plan) -> list[str]:
    rows = [(as_flag(FIELDS[k], plan.config.get(k)), by) for k, by in plan.recorded().items()]
    width = max((len(flag) for flag, _ in rows), default=0)
    return [f"  {flag:<{width}}  {source}" for flag, source in rows] or ["  none"]


def _schedule(config: Config, state: dict[str, Any] | None) -> list[str]:
    """The schedule resolved where its length is known without the data (steps, a
    resumed checkpoint's data), else in fractions of the length to come."""
    t = config.train
    if t.time_budget is not None and t.planned_steps is None:
        budget = seconds_text(t.time_budget)
        length = f"fitted to --time-budget {budget} by a warm-up once the run is built"
        return _fractions(config, f"{length} (then recorded as --planned-steps)")
    images = state["dataset"]["num_images"] if state is not None else None
    by_steps = t.time_budget is not None or (t.max_steps is not None and t.epochs is None)
    if images is None and not by_steps:
        epochs = t.epochs or DATASETS.get(config.data.name).default_epochs
        per_step = schedules.images_per_step(config, 1)
        length = f"{epochs:,} epochs of {per_step:,} images a step"
        return _fractions(config, f"{length} (the steps follow from the data's count)")
    step, before = 0, None
    if state is not None:
        step, saved = int(state["step"]), Config.from_dict(state["config"])
        before = schedules.recorded(state.get("schedule"), saved, schedules.Basis(images))
    s = schedules.resolve(config, schedules.Basis(images or 1, 1, step, before))
    note = schedules.continued(s, before, step)
    return [_length(s, images, step), *_resolved(config, s), *([f"  {note}"] if note else [])]


def _length(s: schedules.Schedule, images: int | None, step: int) -> str:
    text = f"{s.total:,} steps of {s.images_per_step:,} images"
    if images:
        text += f" ({s.total * s.images_per_step / images:,.1f} epochs)"
    if step:
        text += f", from step {step:,}"
    if s.end < s.total:
        text += f"; this session stops at step {s.end:,}"
    return ROW.format("length", text)


def _resolved(config: Config, s: schedules.Schedule) -> list[str]:
    o = config.optim
    decay = "constant"
    if o.lr_decay:
        start = max(math.ceil(s.total - o.lr_decay * s.total), 0)
        decay = f"constant to step {start:,}, then linearly down to 0 at step {s.total:,}"
    lines = [ROW.format("learning rate", decay)]
    if o.augment_p == "auto" and o.augment != "none":
        steps = s.ada_ramp_images / s.images_per_step
        ramp = f"p may go from 0 to 1 in {s.ada_ramp_images:,.0f} images ({_steps(steps)})"
        lines.append(ROW.format("ADA's ramp", ramp))
    lines.append(ROW.format("grids", f"every {_steps(s.grid_every)}, and at the end"))
    lines.append(ROW.format("checkpoints", f"every {_steps(s.checkpoint_every)}, and at the end"))
    if s.growth is not None and config.data.image_size is not None:
        lines.append(ROW.format("growth", s.growth.describe(tuple(config.data.image_size))))
    return lines + _stops(config)


def _steps(count: float) -> str:
    """'1 step', '2,000 steps' (a count shown whole)."""
    return "1 step" if round(count) == 1 else f"{count:,.0f} steps"


def _fractions(config: Config, length: str) -> list[str]:
    o, t = config.optim, config.train
    decay = "constant"
    if o.lr_decay:
        decay = f"constant, then down to 0 over the last {o.lr_decay:.0%} of the steps"
    lines = [ROW.format("length", length), ROW.format("learning rate", decay)]
    if o.augment_p == "auto" and o.augment != "none":
        lines.append(ROW.format("ADA's ramp", f"p may go from 0 to 1 in {o.ada_ramp:.0%} of it"))
    grids = "10 a run" if t.sample_every == "auto" else f"every {t.sample_every:,} steps"
    lines.append(ROW.format("grids", f"{grids}, and at the end"))
    lines.append(ROW.format("checkpoints", f"every {t.checkpoint_every:,} steps, and at the end"))
    if config.model.grow:
        share = config.model.grow_share
        lines.append(ROW.format("growth", f"coarse stages in the first {share:.0%} of the steps"))
    return lines + _stops(config)


def _stops(config: Config) -> list[str]:
    t, lines = config.train, []
    if t.time_limit is not None:
        limit = seconds_text(t.time_limit)
        lines.append(ROW.format("time limit", f"a session stops after {limit} of training"))
    if config.optim.augment == "none" and config.optim.augment_p == "auto":
        lines.append(ROW.format("small data", "fewer than 2,000 images add adaptive augmentation"))
    return lines


def _model(config: Config, state: dict[str, Any] | None) -> str:
    """The model and its size: a checkpoint's, or the dataset's defaults' (counted
    beforehand: no torch), or counted on the meta device (torch)."""
    m, spec = config.model, DATASETS.get(config.data.name)
    if state is not None:
        shape, classes = tuple(state["model"]["image_shape"]), state["model"].get("classes")
        counted = _counted(m.name, shape, m.latent_dim, len(classes or []), m.grow, m.grow_from)
    elif config.data.image_size is None:
        return f"Model: {m.name}, at the size of the data's images (known once it is loaded)."
    else:
        shape = (spec.channels or 3, *config.data.image_size)
        counted = spec.parameters if _at_defaults(config) else None
        if counted is None and not m.conditional:  # classes are the data's: unknown yet
            counted = _counted(m.name, shape, m.latent_dim, 0, m.grow, m.grow_from)
    size = f"Model: {m.name} at {'x'.join(map(str, shape))}, latent {m.latent_dim}"
    if counted is None:
        return f"{size} (G and D are counted once the data's classes are known)."
    return f"{size}: G {counted[0]:,} parameters, D {counted[1]:,}."


def _at_defaults(config: Config) -> bool:
    """The dataset's own model, size and options (`DatasetEntry.parameters` counts them)."""
    spec, m = DATASETS.get(config.data.name), config.model
    latent = FIELDS["model.latent_dim"].default
    own = (spec.default_model, latent, False, dict(spec.defaults).get("model.conditional", False))
    size = tuple(config.data.image_size or ()) == tuple(spec.default_image_size or ())
    return size and (m.name, m.latent_dim, m.grow, m.conditional) == own


def _counted(name: str, shape: tuple, latent: int, classes: int, grow: bool, grow_from: int):
    from gan.models import parameter_count
    from gan.models.growth import levels

    return parameter_count(name, shape, latent, classes, levels(grow_from) if grow else 0)
