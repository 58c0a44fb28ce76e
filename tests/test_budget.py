"""--time-budget: the warm-up fixes the plan once, records it, and the run that follows is
exactly the step-planned run of that length (replayed by config.toml, resumed exactly).

Budgets here are a few seconds; the checks are on what was planned and recorded, never on
how long anything took."""

from __future__ import annotations

import contextlib
import json
import tomllib

import pytest
import torch

from gan.checkpoint import load_checkpoint
from gan.config.values import duration, seconds_text
from gan.errors import GanError
from tests.conftest import MNIST_1K, error_lines, run_cli

TINY = {"data": str(MNIST_1K), "model": "mlp", "batch_size": 8, "device": "cpu"}
TINY |= {"log_every": 1, "checkpoint_every": 1000, "augment": "translation"}
TINY |= {"augment_p": "auto", "ada_target": 0.05, "lr_decay": 0.5}


def _train(tmp_path, name: str, **options):
    import gan

    return gan.train(**TINY, **options, workdir=str(tmp_path), run_name=name)


def _history(tmp_path, name: str) -> list[tuple]:
    keys = ("step", "d_loss", "g_loss", "augment_p", "lr_g")
    lines = (tmp_path / "logs" / name / "history.jsonl").read_text().splitlines()
    return [tuple(json.loads(line)[k] for k in keys) for line in lines]


@contextlib.contextmanager
def _logged():
    """What gan logs meanwhile, as one text (`said()`)."""
    from loguru import logger

    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), format="{message}")
    try:
        yield lambda: "".join(lines)
    finally:
        logger.remove(sink)


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory):
    """One run of a 6-second budget, shared by the tests that read what it recorded (on a
    loaded machine the warm-up alone can take 2-3 s, which would leave a 4-second budget no
    room to train)."""
    tmp_path = tmp_path_factory.mktemp("budget")
    result = _train(tmp_path, "b", time_budget="6s")
    return tmp_path, result


def test_the_plan_is_fixed_once_and_recorded_everywhere(budgeted):
    tmp_path, result = budgeted
    logs = tmp_path / "logs" / "b"
    record = json.loads((logs / "run.json").read_text())
    planned = record["time_budget"]["planned_steps"]
    assert planned > 1 and result.step == planned == record["total_steps"]
    assert record["train"]["time_budget"] == 6.0 and record["train"]["planned_steps"] == planned
    assert record["sources"]["train.planned_steps"] == "time budget"
    assert record["time_budget"]["timed_steps"] >= 12 and record["time_budget"]["step_s"] > 0
    toml = tomllib.loads((logs / "config.toml").read_text())["train"]
    assert toml["time_budget"] == 6.0 and toml["planned_steps"] == planned
    assert "max_steps" not in toml and "epochs" not in toml
    state = load_checkpoint(result.checkpoint)
    assert state["config"]["train"]["planned_steps"] == planned
    assert state["schedule"]["fitted"]["planned_steps"] == planned
    assert json.loads((logs / "status.json").read_text())["planned"] == planned
    log = (logs / "train.log").read_text()
    assert log.count("so the run is planned at") == 1
    assert f"planned at {planned:,} steps" in log


def test_tensorboard_and_gan_runs_show_the_plan_and_the_time_left(budgeted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gan.runs.overview import _left

    tmp_path, result = budgeted
    acc = EventAccumulator(str(tmp_path / "logs" / "b"))
    acc.Reload()
    text = acc.Tensors("time_budget/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"planned at {result.step:,} steps" in text
    left = [e.value for e in acc.Scalars("perf/seconds_left")]
    assert left[-1] == 0 and all(v >= 0 for v in left) and max(left) > 0
    info = {"images_per_step": 8}
    last = {"step": 10, "images_per_s": 80.0}  # the history's last record: 10 steps a second
    assert _left(last, info, 100) == pytest.approx(9.0)  # 90 steps to go
    assert _left(last, info, None) is None and _left(None, info, 100) is None


def test_the_schedules_follow_the_fixed_plan(budgeted):
    tmp_path, result = budgeted
    history = _history(tmp_path, "b")
    planned = result.step
    assert [step for step, *_ in history] == list(range(1, planned + 1))  # no warm-up steps
    rates = [lr for *_, lr in history]
    decay_from = planned - 0.5 * planned  # --lr-decay 0.5: the last half, down towards 0
    assert all(lr == pytest.approx(2e-4) for (step, *_), lr in zip(history, rates, strict=True)
               if step - 1 <= decay_from)  # fmt: skip
    assert rates[-1] == pytest.approx(2e-4 * 1 / (0.5 * planned))
    state = load_checkpoint(result.checkpoint)
    assert state["schedule"]["ada_ramp_images"] == pytest.approx(
        0.2 * planned * 8
    )  # --ada-ramp 0.2
    grids = sorted(p.name for p in (tmp_path / "assets" / "b").glob("samples-*.png"))
    every = -(-planned // 10)
    assert grids[0] == f"samples-{every:07d}.png" and grids[-1] == f"samples-{planned:07d}.png"


def test_config_toml_replays_the_recorded_steps_bit_identically(budgeted):
    tmp_path, result = budgeted
    import gan

    again = gan.train(config=str(tmp_path / "logs" / "b" / "config.toml"), run_name="r",
                      workdir=str(tmp_path))  # fmt: skip
    assert again.step == result.step
    assert _history(tmp_path, "r") == _history(tmp_path, "b")  # bit-identical, not close
    log = (tmp_path / "logs" / "r" / "train.log").read_text()
    assert "Measuring the step rate" not in log  # the recorded plan, not the budget


def test_a_resumed_budget_run_keeps_its_plan_and_is_bit_identical(budgeted):
    tmp_path, result = budgeted
    planned = result.step
    import gan

    saved = str(tmp_path / "logs" / "b" / "config.toml")
    half = max(planned // 2, 1)
    gan.train(config=saved, run_name="s", workdir=str(tmp_path), stop_at=half)
    resumed = gan.train(run_name="s", workdir=str(tmp_path), resume="auto", time_budget="6s")
    assert resumed.step == planned
    assert _history(tmp_path, "s") == _history(tmp_path, "b")
    a, b = (load_checkpoint(tmp_path / "checkpoints" / n / "last.pt") for n in ("b", "s"))
    a, b = a["runtime"]["generator"], b["runtime"]["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_budgeted_run_is_extended_by_max_steps_on_resume(budgeted):
    """--max-steps replaces the checkpoint's --time-budget: the run goes on to it, ADA's
    ramp at the speed it had, the learning-rate decay moved to the new end (and said)."""
    tmp_path, result = budgeted
    import gan

    planned, last = result.step, str(result.checkpoint)
    with _logged() as said:
        longer = gan.train(
            resume=last, run_name="more", workdir=str(tmp_path), max_steps=planned + 6
        )
    assert longer.step == planned + 6
    assert [step for step, *_ in _history(tmp_path, "more")] == list(
        range(planned + 1, planned + 7)
    )
    before, after = (
        load_checkpoint(last)["schedule"],
        load_checkpoint(longer.checkpoint)["schedule"],
    )
    assert after["total"] == planned + 6 and after["fitted"] is None
    assert after["ada_ramp_images"] == before["ada_ramp_images"]  # the ramp does not restart
    assert f"The plan is now {planned + 6:,} steps (was {planned:,})" in said()
    config = tomllib.loads((tmp_path / "logs" / "more" / "config.toml").read_text())["train"]
    assert config["max_steps"] == planned + 6 and "time_budget" not in config


def test_config_toml_of_a_budgeted_run_with_max_steps_trains_that_many(budgeted):
    """The docs' `--config logs/my-run/config.toml --max-steps N`: a length given beside the
    file replaces the file's --time-budget and its planned steps."""
    tmp_path, _ = budgeted
    config = tmp_path / "logs" / "b" / "config.toml"
    done = run_cli("train", "--config", config, "--max-steps", "7", "--run-name", "seven",
                   "--workdir", tmp_path, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "logs" / "seven" / "run.json").read_text())
    assert record["total_steps"] == 7 and record["train"]["time_budget"] is None
    assert record["sources"]["train.max_steps"] == "flag"
    assert "train.planned_steps" not in record["sources"]


def test_a_new_budget_on_resume_plans_the_steps_that_fit_from_there(budgeted):
    tmp_path, result = budgeted
    import gan

    with _logged() as said:
        where = {"run_name": "again", "workdir": str(tmp_path)}
        more = gan.train(resume=str(result.checkpoint), time_budget="5s", **where)
    state = load_checkpoint(more.checkpoint)
    fitted = state["schedule"]["fitted"]
    assert more.step == fitted["planned_steps"] > result.step and fitted["budget_s"] == 5.0
    assert state["config"]["train"]["planned_steps"] == more.step
    assert "Measuring the step rate for --time-budget 5s" in said()
    log = (tmp_path / "logs" / "again" / "train.log").read_text()
    assert f"so the run is planned at {more.step:,} steps" in log


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"time_budget": "1s"}, "too short for the warm-up"),
        ({"time_budget": "5m", "max_steps": 100}, "cannot be combined with --max-steps"),
        ({"time_budget": "5m", "epochs": 2}, "cannot be combined with --epochs"),
        ({"planned_steps": 100}, "--planned-steps is the plan of a --time-budget"),
        ({"time_budget": "5 minutes"}, "is not a duration such as 300, 90s, 5m or 1h30m"),
    ],
)
def test_budgets_that_cannot_plan_a_run_are_one_sentence(tmp_path, options, message):
    with pytest.raises(GanError, match=message):
        _train(tmp_path, "x", **options)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "logs").exists()


def test_the_cli_refuses_a_budget_too_short_in_one_sentence(tmp_path):
    result = run_cli("train", "--data", MNIST_1K, "--time-budget", "1", "--device", "cpu",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and len(error_lines(result)) == 1
    assert "--time-budget 1s is too short for the warm-up" in result.stderr


@pytest.mark.parametrize(
    ("dataset", "given", "expected"),
    [
        # mnist's own length is --time-budget 5m: the user's steps or epochs replace it
        ("mnist", {"train.max_steps": 40}, (None, 40, None, None)),
        ("mnist", {"train.epochs": 2}, (None, None, 2, None)),
        # mri's own length is its epochs stopped by --time-limit 3m: a budget replaces both
        ("mri", {"train.time_budget": 60.0}, (60.0, None, None, None)),
    ],
)
def test_a_budget_replaces_the_datasets_own_length(dataset, given, expected):
    from gan.config import Config
    from gan.config.given import FLAG
    from gan.training import plan as plans

    config = Config.from_values({"data.name": dataset, **given})
    plan = plans.before_data(config, dict.fromkeys(given, FLAG))
    t = plan.config.train
    assert (t.time_budget, t.max_steps, t.epochs, t.planned_steps) == expected
    assert t.time_limit is None  # the dataset's own stop went with its length


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300), ("5m", 300), ("1h30m", 5400), ("1.5h", 5400), ("90s", 90), (2.5, 2.5)],
)
def test_durations_read_as_seconds_and_back(text, seconds):
    assert duration(text) == seconds and duration(seconds_text(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "m", "5 minutes", "1h30", "1m1m", "0", "-3", "nan", True])
def test_durations_that_are_not(text):
    with pytest.raises(ValueError):
        duration(text)


def test_the_steps_planned_leave_room_for_checkpoints_grids_and_evaluations():
    from types import SimpleNamespace

    from gan.training.budget import _steps_that_fit

    train = SimpleNamespace(sample_every="auto", checkpoint_every=100, eval_every=None)
    assert _steps_that_fit(train, 10.0, 0.01, (0.0, 0.0, 0.0)) == 1000

    def cost(steps):  # 0.1 s a checkpoint (one every 100 steps), 0.05 s a grid (12 a run)
        return steps * 0.01 + (steps // 100 + 1) * 0.1 + (steps // -(-steps // 10) + 2) * 0.05

    fewer = _steps_that_fit(train, 10.0, 0.01, (0.1, 0.05, 0.0))
    assert cost(fewer) <= 10.0 < cost(fewer + 5) and 800 < fewer < 1000
    train.eval_every = 100  # a second an evaluation, one every 100 steps and at the end
    assert _steps_that_fit(train, 10.0, 0.01, (0.0, 0.0, 1.0)) == 499  # 4.99 s + 5 x 1 s
    assert _steps_that_fit(train, 0.5, 0.01, (0.0, 0.0, 1.0)) == 0  # the last one alone
