"""The schedule, resolved once in the plan (issue 43): values and pure functions of the step,
and the one rule for a resume on a new length (docs/resume-and-failures.md)."""

from __future__ import annotations

import pytest

from gan.config import Config
from gan.config.given import ARGUMENT, FILE, FLAG, merge, over
from gan.training import schedule as schedules
from gan.training.rules import resumed_options

GROW = {"model.name": "fastgan", "model.grow": True, "data.image_size": (64, 64)}


def _schedule(before=None, step=0, ramp_given=False, **values):
    config = Config.from_values({"optim.batch_size": 8, **values})
    basis = schedules.Basis(1000, 1, step, before, ramp_given)
    return schedules.resolve(config, basis)


def test_every_schedule_follows_the_planned_length():
    s = _schedule(**{"train.max_steps": 40, "optim.lr_decay": 0.25, "optim.ada_ramp": 0.5})
    assert (s.total, s.end, s.images_per_step, s.grid_every) == (40, 40, 8, 4)
    assert [s.lr_factor(k) for k in (0, 30, 35, 40)] == [1.0, 1.0, 0.5, 0.0]
    assert s.ada_ramp_images == 0.5 * 40 * 8 and s.stage(3) is None
    assert _schedule(**{"train.epochs": 2}).total == 250  # 2 x 1,000 images / 8
    stopped = _schedule(**{"train.max_steps": 40, "train.stop_at": 10})
    assert (stopped.total, stopped.end) == (40, 10)  # a stop keeps the plan
    assert _schedule(**{"train.time_budget": 60.0}).open  # until its warm-up fixes it


def test_a_longer_plan_keeps_the_growth_stages_and_adas_speed():
    first = _schedule(**GROW, **{"train.max_steps": 24})
    longer = _schedule(first, 16, **GROW, **{"train.max_steps": 48})
    assert longer.growth.planned == 24 and longer.stage(16).level == 3  # full size stays
    assert longer.ada_ramp_images == first.ada_ramp_images
    again = _schedule(longer, 30, **GROW, **{"train.max_steps": 96})  # and again
    assert again.growth.planned == 24
    given = _schedule(first, 16, ramp_given=True, **GROW, **{"train.max_steps": 48})
    assert given.ada_ramp_images == 2 * first.ada_ramp_images  # --ada-ramp given now


def test_the_learning_rate_follows_the_new_length_and_says_so():
    decay = {"optim.lr_decay": 0.5}
    first = _schedule(**decay, **{"train.max_steps": 20})
    longer = _schedule(first, 20, **decay, **{"train.max_steps": 40})
    assert first.lr_factor(20) == 0.0 and longer.lr_factor(20) == 1.0
    note = schedules.continued(longer, first, 20)
    assert note == (
        "The plan is now 40 steps (was 20): at step 20 the learning rates are 100% of their "
        "values (were 0%), and decay from step 20 to 0 at step 40."
    )
    assert schedules.continued(first, first, 12) is None  # nothing changed: nothing said


def test_a_schedule_goes_into_a_checkpoint_and_back():
    s = _schedule(**GROW, **{"train.max_steps": 24})
    assert schedules.Schedule.from_dict(s.to_dict()) == s
    saved = Config.from_values({"optim.batch_size": 8, "train.max_steps": 30})
    basis = schedules.Basis(1000)
    older = schedules.recorded({"fitted": None, "ada_ramp_images": 7.0}, saved, basis)
    assert (older.total, older.ada_ramp_images) == (30, 7.0)  # format 1: from its config


def test_a_config_files_stop_at_where_the_run_stopped_does_not_stop_its_resume():
    saved = Config.from_values({"train.max_steps": 100, "train.stop_at": 30})
    given = Config.from_values({"train.max_steps": 100, "train.stop_at": 30})
    chosen = {"train.max_steps": FILE, "train.stop_at": FILE}
    assert resumed_options(saved, given, chosen, step=30)["train.stop_at"] is None
    assert resumed_options(saved, given, chosen, step=20)["train.stop_at"] == 30  # ahead
    flag = {"train.stop_at": FLAG}
    assert resumed_options(saved, given, flag, step=30)["train.stop_at"] == 30  # asked for


@pytest.mark.parametrize(
    ("below", "given", "length"),
    [
        # a length given in another form replaces the one below, whatever its form
        (
            {"train.time_budget": 300.0, "train.planned_steps": 900},
            {"train.max_steps": 50},
            {"train.max_steps": 50},
        ),
        ({"train.epochs": 20}, {"train.time_budget": 60.0}, {"train.time_budget": 60.0}),
        # the same length given again changes nothing (config.toml replays its plan)
        (
            {"train.time_budget": 4.0, "train.planned_steps": 9},
            {"train.time_budget": 4.0},
            {"train.time_budget": 4.0, "train.planned_steps": 9},
        ),
    ],
)
def test_a_length_given_replaces_the_length_below(below, given, length):
    merged = over({**below, "optim.lr_g": 1e-3}, given)
    assert merged == {**length, "optim.lr_g": 1e-3}
    config, chosen = merge({**below, "optim.lr_g": 1e-3}, given, ARGUMENT)
    assert chosen.sources == {
        **dict.fromkeys(set(length) - set(given), FILE),
        "optim.lr_g": FILE,
        **dict.fromkeys(given, ARGUMENT),
    }
    assert config.train.max_steps == length.get("train.max_steps")


def test_a_longer_plan_on_resume_replaces_the_checkpoints_budget():
    saved = Config.from_values({"train.time_budget": 300.0, "train.planned_steps": 900})
    given = Config.from_values({"train.max_steps": 2000})
    changes = resumed_options(saved, given, {"train.max_steps": ARGUMENT}, step=900)
    assert changes["train.max_steps"] == 2000
    assert changes["train.time_budget"] is None and changes["train.planned_steps"] is None


@pytest.mark.parametrize(
    "bad",
    [
        {"total": "40"},
        {"grid_every": 0},
        {"lr_decay": float("nan")},
        {"ada_ramp_images": 0.5},
        {"growth": {"levels": 9, "share": 0.5, "fade": 0.5, "planned": 24}},
        {"fitted": {"step_s": 0.0}},
        {"unknown": 1},
    ],
)
def test_a_checkpoints_schedule_that_gan_never_writes_is_one_sentence(bad):
    from gan.errors import GanError

    good = _schedule(**GROW, **{"train.max_steps": 24}).to_dict()
    saved = Config.from_values({"train.max_steps": 24})
    with pytest.raises(GanError, match="schedule is not one gan writes"):
        schedules.recorded({**good, **bad}, saved, schedules.Basis(1000))
    assert schedules.recorded(good, saved, schedules.Basis(1000)).growth.planned == 24
