"""Coarse-to-fine training (--grow): the schedule as a function of the step, exact resume
across a stage boundary and within a fade, full-size samples from a low stage, labels with
growth, and the bad values."""

from __future__ import annotations

import json

import pytest
import torch

from gan.checkpoint import load_checkpoint
from gan.errors import GanError
from gan.models import build_models
from gan.models.growth import Stage, downsample, schedule
from tests.conftest import MNIST_1K

# 24 steps, 3 coarse levels (8x8, 16x16, 32x32 of 64x64): a stage every 4 steps, each
# faded in over 2 (steps 4-5, 8-9, and the full size at 12-13).
TINY = {"dataset": "mri", "image_size": "64x64", "batch_size": 8, "device": "cpu"}
TINY |= {"grow": True, "max_steps": 24, "log_every": 1, "checkpoint_every": 4}
TINY |= {"keep_checkpoints": 10}


def _train(tmp_path, name: str, **options):
    import gan

    return gan.train(**(TINY | options), workdir=str(tmp_path), run_name=name)


def _history(tmp_path, name: str) -> list[tuple]:
    keys = ("step", "d_loss", "g_loss", "grow_height", "grow_alpha", "augment_p")
    lines = (tmp_path / "logs" / name / "history.jsonl").read_text().splitlines()
    return [tuple(json.loads(line).get(k) for k in keys) for line in lines]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("grow")
    return tmp_path, _train(tmp_path, "w")


def test_the_stage_is_a_function_of_the_step():
    at = [schedule(s, 24, 3, 0.5, 0.5) for s in range(24)]
    assert [s.level for s in at] == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 12
    assert [s.alpha for s in at[:16]] == [1, 1, 1, 1] + [0, 0.5, 1, 1] * 3
    assert schedule(10, 24, 0, 0.5, 0.5) == Stage(0, 1.0)  # no levels: always full size
    assert schedule(0, 24, 3, 0.0, 0.5) == Stage(3, 1.0)  # no share: full size at once
    assert all(s.alpha == 1 for s in (schedule(k, 24, 3, 0.5, 0.0) for k in range(24)))
    # the plan decides: twice the steps, twice as long a stage
    assert [schedule(s, 48, 3, 0.5, 0.5).level for s in (7, 8, 23, 24)] == [0, 1, 2, 3]


def test_reals_are_brought_to_the_stage_and_blended_in_a_fade():
    x = torch.rand(2, 1, 64, 64)
    assert downsample(x, Stage(0, 1.0), 3).shape == (2, 1, 8, 8)
    assert torch.allclose(downsample(x, Stage(3, 1.0), 3), x)
    half = downsample(x, Stage(1, 0.5), 3)  # 16x16, half of it the 8x8 image upsampled
    sharp, coarse = downsample(x, Stage(1, 1.0), 3), downsample(x, Stage(1, 0.0), 3)
    assert torch.allclose(half, (sharp + coarse) / 2, atol=1e-6)
    assert torch.allclose(coarse[..., ::2, ::2], downsample(x, Stage(0, 1.0), 3))


@pytest.mark.parametrize("classes", [0, 3])
def test_g_trains_at_the_stage_and_shows_the_full_size(classes):
    g, d = build_models("fastgan", (1, 64, 64), 16, classes, grow=3)
    z, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 0])
    args = (y,) if classes else ()
    for level, size in enumerate((8, 16, 32, 64)):
        for alpha in (0.5, 1.0):
            for m in (*g.modules(), *d.modules()):
                if hasattr(m, "set_stage"):
                    m.set_stage(Stage(level, alpha))
            fake = g.train()(z, *args)
            assert fake.shape == (4, 1, size, size)
            assert d(fake, *args).shape == (4,)
            assert g.eval()(z, *args).shape == (4, 1, 64, 64)


def test_the_run_grows_and_says_so(whole):
    tmp_path, result = whole
    assert result.step == 24
    heights = [h for _, _, _, h, _, _ in _history(tmp_path, "w")]
    assert heights == [8.0] * 4 + [16.0] * 4 + [32.0] * 4 + [64.0] * 12
    log = (tmp_path / "logs" / "w" / "train.log").read_text()
    assert "Coarse to fine: 8x8 -> 16x16 -> 32x32 -> 64x64, a stage every 4 steps" in log
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "logs" / "w"), size_guidance={"tensors": 0})
    acc.Reload()
    assert [e.value for e in acc.Scalars("growth/height")][:5] == [8, 8, 8, 8, 16]
    assert "growth/text_summary" in acc.Tags()["tensors"]
    state = load_checkpoint(tmp_path / "checkpoints" / "w" / "last.pt")
    assert state["model"]["grow"] == 3 and state["config"]["model"]["grow_from"] == 8


def test_a_longer_plan_on_resume_keeps_the_stages_where_they_were(whole):
    """Resumed at full size with twice the steps, the run stays at full size: the stages
    keep the steps they were laid on (stretched to 48 steps, step 16 would be 32x32)."""
    tmp_path, _ = whole
    at_16 = tmp_path / "checkpoints" / "w" / "step-0000016.pt"
    _train(tmp_path, "longer", resume=str(at_16), max_steps=48, stop_at=20)
    heights = [h for _, _, _, h, _, _ in _history(tmp_path, "longer")]
    assert heights == [64.0] * 4
    state = load_checkpoint(tmp_path / "checkpoints" / "longer" / "last.pt")
    assert state["schedule"]["growth"]["planned"] == 24 and state["schedule"]["total"] == 48


def test_exact_resume_across_a_stage_boundary_and_within_a_fade(whole):
    tmp_path, _ = whole
    _train(tmp_path, "s", stop_at=5)  # the next step (index 5) is half-way into a fade
    _train(tmp_path, "s", stop_at=8, resume="auto")  # 8: the first step of a new stage
    resumed = _train(tmp_path, "s", resume="auto")
    assert resumed.step == 24
    assert _history(tmp_path, "s") == _history(tmp_path, "w")  # bit-identical, not close
    a, b = (load_checkpoint(tmp_path / "checkpoints" / n / "last.pt") for n in ("w", "s"))
    a, b = a["runtime"], b["runtime"]
    for part in ("generator", "generator_ema", "discriminator"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part


def test_a_checkpoint_at_a_low_stage_samples_and_evaluates_at_full_size(whole):
    tmp_path, _ = whole
    import gan

    early = tmp_path / "checkpoints" / "w" / "step-0000004.pt"  # trained at 8x8 so far
    generator = gan.load_generator(early, device="cpu")
    images = generator.sample(4, seed=0)
    assert images.shape == (4, 64, 64, 1)
    stage = load_checkpoint(early)["runtime"]["generator_ema"]["_extra_state"]  # level 0, faded in
    assert stage.tolist() == [0.0, 1.0]
    scores = gan.evaluate(early, num_samples=50, metrics="fid", device="cpu")
    assert scores["fid"] > 0


def test_labels_with_growth(tmp_path):
    result = _train(tmp_path, "c", dataset="mnist", data=str(MNIST_1K), image_size="32x32",
                    model="fastgan", conditional=True, max_steps=8)  # fmt: skip
    assert result.step == 8
    import gan

    generator = gan.load_generator(result.checkpoint, device="cpu")
    assert generator.sample(2, seed=0, label="7").shape == (2, 32, 32, 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"grow_from": 3}, "--grow-from 3 is not one of 2, 4, 8"),
        ({"model": "mlp"}, "Model 'mlp' cannot train coarse to fine; use --model fastgan"),
        ({"max_steps": None, "time_budget": "1m"}, "--grow cannot be planned by --time-budget"),
        ({"compile": True}, "--grow cannot be compiled"),
        ({"grow_share": 1.0}, "grow_share: 1.0 is not in the range"),
        ({"grow_fade": -0.5}, "grow_fade: -0.5 is not in the range"),
    ],
)
def test_bad_growth_values_are_one_sentence(tmp_path, options, message):
    with pytest.raises(GanError, match=message) as info:
        _train(tmp_path, "bad", **options)
    assert str(info.value).count(". ") == 0 and not (tmp_path / "checkpoints" / "bad").exists()
