"""Training techniques: losses, R1, WGAN-GP, spectral norm, DiffAugment and ADA."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from gan.config import Config, OptimConfig, TrainConfig, catalog
from gan.rng import seed_everything
from gan.training.augment import POLICIES, Augmenter, cutout, translation
from gan.training.batches import DeviceBatches
from gan.training.build import trainer_of
from gan.training.losses import LOSSES, gradient_penalty, r1_penalty
from gan.training.recipe import build_recipe
from gan.training.runtime import build_runtime
from gan.training.step import d_backward
from tests.conftest import MNIST_1K, run_cli
from tests.test_trainer import TinyD, TinyG

CPU = torch.device("cpu")


class LinearD(nn.Module):
    """D(x) = w . x + b: its input gradient is w for every image."""

    batch_independent = True

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.fc = nn.Linear(w.numel(), 1)
        with torch.no_grad():
            self.fc.weight.copy_(w.view(1, -1))
            self.fc.bias.fill_(0.5)

    def forward(self, x):
        return self.fc(x.flatten(1)).squeeze(1)


def trainer(loss="ns", batch=8, accumulation=1, seed=0, d=None, precision="fp32", **recipe):
    seed_everything(seed)
    config = Config(
        optim=OptimConfig(batch_size=batch, accumulation_steps=accumulation),
        train=TrainConfig(seed=seed, max_steps=50),
    )
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))  # fmt: skip
    from gan.speed import Speed

    runtime = build_runtime(TinyG(), d or TinyD(), CPU, settings=Speed(precision, False, False))
    return trainer_of(
        config,
        runtime,
        DeviceBatches(images, CPU, batch, seed),
        recipe=build_recipe(loss, device=CPU, seed=seed, **recipe),
    )


# ---- losses and penalties against hand-computed values ----------------------------------------

REAL, FAKE = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])


def _bce(x, target):
    p = 1 / (1 + math.exp(-x))
    return -math.log(p) if target else -math.log(1 - p)


@pytest.mark.parametrize(
    ("name", "d_value", "g_value"),
    [
        ("ns", (_bce(2, 1) + _bce(-1, 1)) / 2 + (_bce(0.5, 0) + _bce(-3, 0)) / 2,
         (_bce(0.5, 1) + _bce(-3, 1)) / 2),
        ("hinge", (0 + 2) / 2 + (1.5 + 0) / 2, -(0.5 - 3) / 2),
        ("lsgan", 0.5 * ((1 + 4) / 2 + (0.25 + 9) / 2), 0.5 * (0.25 + 16) / 2),
        ("wgan-gp", (0.5 - 3) / 2 - (2 - 1) / 2, -(0.5 - 3) / 2),
    ],
)  # fmt: skip
def test_each_loss_matches_its_formula(name, d_value, g_value):
    loss = LOSSES.get(name)
    assert float(loss.d(REAL, FAKE)) == pytest.approx(d_value, rel=1e-6)
    assert float(loss.g(FAKE)) == pytest.approx(g_value, rel=1e-6)


def test_relativistic_pairing_loss_and_its_r1_and_r2():
    """R3GAN: each real against the fake beside it; --r1-gamma penalises D's gradient on
    the reals (R1) and the fakes (R2) alike."""
    loss = LOSSES.get("rpgan")

    def softplus(x):
        return math.log1p(math.exp(x))

    d_value = (softplus(0.5 - 2) + softplus(-3 + 1)) / 2
    assert float(loss.d(REAL, FAKE)) == pytest.approx(d_value, rel=1e-6)
    g_value = (softplus(2 - 0.5) + softplus(-1 + 3)) / 2
    assert float(loss.g(FAKE, REAL)) == pytest.approx(g_value, rel=1e-6)

    t = trainer("rpgan", d=LinearD(torch.ones(64)), r1_gamma=1.0, r1_every=1)
    rt, recipe = t.parts.runtime, t.parts.recipe
    reals, latents, _ = t.parts.draws.draw()
    rt.D.zero_grad()
    d_backward(rt, recipe, reals, latents, keep_fakes=False, r1=True)
    penalised = rt.D.fc.weight.grad.clone()
    recipe.r1_gamma = 0.0
    rt.D.zero_grad()
    d_backward(rt, recipe, reals, latents, keep_fakes=False, r1=True)
    # Each penalty is gamma / 2 * ||w||^2, whose gradient is gamma * w: R1 + R2 = 2 * w.
    torch.testing.assert_close(penalised - rt.D.fc.weight.grad, torch.full((1, 64), 2.0))


def test_losses_and_augments_match_the_catalog_without_torch():
    assert set(catalog.LOSSES) == set(LOSSES.names())
    assert set(catalog.AUGMENTS) == set(POLICIES)


def test_what_the_panels_show_and_the_ada_signal_per_loss():
    out = torch.tensor([0.0, 2.0])
    assert float(LOSSES.get("ns").panel(out)) == pytest.approx((0.5 + 1 / (1 + math.exp(-2))) / 2)
    assert float(LOSSES.get("hinge").panel(out)) == 1.0
    assert float(LOSSES.get("lsgan").real_signs(torch.tensor([0.9, 0.1]), out)) == 0.0
    # A critic has no absolute midpoint: reals are compared with the fakes' mean score.
    assert float(LOSSES.get("wgan-gp").real_signs(torch.tensor([5.0, 7.0]), out)) == 2.0


def test_r1_and_gradient_penalty_match_the_linear_case():
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])  # ||w|| = 5
    d = LinearD(w)
    x = torch.randn(6, 4, requires_grad=True)
    assert r1_penalty(d(x), x, gamma=2.0).detach().item() == pytest.approx(0.5 * 2.0 * 25)
    assert gradient_penalty(d(x), x, weight=10.0).detach().item() == pytest.approx(
        10.0 * (5 - 1) ** 2
    )
    scaled = r1_penalty(d(x), x, gamma=2.0, scale=1024.0)  # fp16's recipe unscales
    assert scaled.detach().item() == pytest.approx(25.0)


def test_penalties_train_d_in_its_one_backward():
    t = trainer("wgan-gp", d=LinearD(torch.ones(64)), r1_gamma=0.0)
    rt, recipe = t.parts.runtime, t.parts.recipe
    reals, latents, _ = t.parts.draws.draw()
    rt.D.zero_grad()
    d_backward(rt, recipe, reals, latents, keep_fakes=False)
    with_gp = rt.D.fc.weight.grad.clone()
    recipe.gp_weight = 0.0
    rt.D.zero_grad()
    d_backward(rt, recipe, reals, latents, keep_fakes=False)
    # With all-ones weights ||w|| = 8: the penalty's gradient 2 * 10 * (8 - 1) * w / 8 adds up.
    torch.testing.assert_close(with_gp - rt.D.fc.weight.grad, torch.full((1, 64), 17.5))


def test_accumulated_r1_gives_the_gradient_of_one_big_batch():
    grads = []
    for batch, k in ((16, 1), (4, 4)):
        t = trainer("hinge", batch=batch, accumulation=k, r1_gamma=1.0, r1_every=1)
        rt, recipe = t.parts.runtime, t.parts.recipe
        reals = [torch.linspace(-1, 1, 16 * 64).view(16, 1, 8, 8)[i::k] for i in range(k)]
        latents = [torch.linspace(-2, 2, 16 * 8).view(16, 8)[i::k] for i in range(k)]
        rt.D.zero_grad()
        d_backward(rt, recipe, reals, latents, keep_fakes=False, r1=True)
        grads.append([p.grad.clone() for p in rt.D.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("loss", "precision"),
    [("hinge", "bf16"), ("wgan-gp", "bf16"), ("wgan-gp", "fp16"), ("rpgan", "bf16"),
     ("rpgan", "fp16")],
)  # fmt: skip
def test_penalties_run_under_autocast(loss, precision):
    """fp16 takes AMP's gradient-penalty recipe (outputs scaled, gradients unscaled)."""
    t = trainer(loss, precision=precision, r1_gamma=1.0, r1_every=1, augment=("color",),
                augment_p=1.0)  # fmt: skip
    assert t.parts.runtime.scaler_d.is_enabled() == (precision == "fp16")
    for _ in range(3):
        stats = t.train_step()
    assert math.isfinite(float(stats.d_loss)) and math.isfinite(float(stats.g_loss))


# ---- augmentation ----------------------------------------------------------------------------


def test_augmentation_is_differentiable_for_g():
    g = TinyG()
    aug = Augmenter(("color", "translation", "cutout"), 1.0, CPU, seed=0)
    aug(g(torch.randn(8, 8))).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_augmentation_is_off_at_p_0_and_seeded():
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    assert torch.equal(Augmenter(("color", "translation", "cutout"), 0.0, CPU, 0)(x), x)
    a = Augmenter(("color", "translation", "cutout"), 1.0, CPU, seed=3)
    b = Augmenter(("color", "translation", "cutout"), 1.0, CPU, seed=3)
    first = a(x)
    assert torch.equal(first, b(x)) and not torch.equal(first, x)
    assert not torch.equal(a(x), first)  # the generator moves on


def test_translation_and_cutout_do_what_they_say():
    x = torch.ones(4, 1, 8, 8)
    shifted = translation(x, lambda *shape: torch.full(shape, 0.999))  # the largest: 1 px
    assert shifted[:, :, -1].abs().sum() == 0 and shifted[:, :, :, -1].abs().sum() == 0
    assert shifted[:, :, :-1, :-1].min() == 1
    holed = cutout(x, lambda *shape: torch.full(shape, 0.5))
    assert int((holed == 0).sum()) == 4 * 4 * 4  # a 4x4 square in each 8x8 image


def test_ada_raises_p_when_d_overfits_and_lowers_it_when_it_does_not():
    aug = Augmenter(("translation",), "auto", CPU, seed=0, target=0.6)
    for step in range(1, 9):  # two adjustments, 4 steps of 32 reals each
        aug.observe(torch.tensor(32.0), 32)  # every real called real: overfitting
        aug.adjust(step, 1000.0)  # a ramp of 1,000 images
    assert float(aug.p) == pytest.approx(2 * 128 / 1000)
    for step in range(9, 13):
        aug.observe(torch.tensor(-32.0), 32)
        aug.adjust(step, 1000.0)
    assert float(aug.p) == pytest.approx(128 / 1000)


def test_same_run_twice_gives_the_same_losses_with_augmentation():
    runs = []
    for _ in range(2):
        t = trainer("hinge", augment=("color", "translation", "cutout"), augment_p=0.5)
        runs.append([float(t.train_step().d_loss) for _ in range(4)])
    assert runs[0] == runs[1]


def test_spectral_norm_is_stored_and_restored_exactly():
    from gan.training.runtime import add_spectral_norm

    d = add_spectral_norm(TinyD())
    d(torch.randn(4, 1, 8, 8))  # one power iteration
    keys = d.state_dict().keys()
    assert any(k.endswith("parametrizations.weight.original") for k in keys)
    again = add_spectral_norm(TinyD())
    again.load_state_dict(d.state_dict())
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(again.eval()(x), d.eval()(x), rtol=0, atol=0)


# ---- through the command line ------------------------------------------------------------------

TINY = ["--data", str(MNIST_1K), "--model", "mlp", "--batch-size", "8", "--device", "cpu",
        "--log-every", "1", "--sample-every", "1000"]  # fmt: skip


def _history(workdir, run):
    return [json.loads(x) for x in (workdir / "logs" / run / "history.jsonl").open()]


def test_resume_with_adaptive_augmentation_and_r1_is_bit_identical(tmp_path):
    techniques = ["--loss", "hinge", "--spectral-norm", "--r1-gamma", "0.5", "--r1-every", "3",
                  "--augment", "color,translation", "--augment-p", "auto", "--ada-ramp", "0.1",
                  "--ada-target", "0.1"]  # fmt: skip
    whole, split = tmp_path / "whole", tmp_path / "split"
    for folder, stop in ((whole, []), (split, ["--stop-at", "12"])):  # one 24-step plan
        folder.mkdir()
        done = run_cli("train", *TINY, *techniques, "--max-steps", "24", *stop, "--run-name",
                       "r", "--workdir", folder, cwd=folder)  # fmt: skip
        assert done.returncode == 0, done.stderr
    again = run_cli("train", "--resume", "auto", "--workdir", split, cwd=split)
    assert again.returncode == 0, again.stderr
    a, b = _history(whole, "r"), _history(split, "r")
    for key in ("d_loss", "g_loss", "d_real", "augment_p"):
        assert [r[key] for r in a] == [r[key] for r in b], key
    assert max(r["augment_p"] for r in a) > 0  # the strength moved


def test_tensorboard_panels_follow_the_loss(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    done = run_cli("train", *TINY, "--loss", "hinge", "--augment", "translation", "--max-steps",
                   "4", "--run-name", "h", "--workdir", tmp_path, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    acc = EventAccumulator(str(tmp_path / "logs" / "h"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"score/d_real", "score/d_fake", "augment/p"} <= tags and "prob/d_real" not in tags


BAD = [
    (("--loss", "wasserstein"), 2, "'wasserstein' is not one of ns, hinge, lsgan, wgan-gp"),
    (("--augment", "flip"), 2, "'flip' is not none or a combination of color"),
    (("--r1-gamma", "-1"), 2, "--r1-gamma"),
    (("--augment-p", "1.5"), 2, "not auto or a probability in [0, 1]"),
    (("--loss", "wgan-gp", "--model", "dcgan-proj"), 1, "BatchNorm in its discriminator"),
    (("--r1-gamma", "1", "--model", "dcgan"), 1, "choose --model"),
]


@pytest.mark.parametrize(("args", "code", "phrase"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_technique_options_are_one_sentence(tmp_path, args, code, phrase):
    done = run_cli("train", "--data", MNIST_1K, "--device", "cpu", "--workdir", tmp_path / "w",
                   *args, cwd=tmp_path)  # fmt: skip
    text = " ".join(done.stderr.replace("│", " ").split())
    assert done.returncode == code, done.stderr
    assert phrase in text
    assert not (tmp_path / "w").exists()


def test_a_run_stopped_and_resumed_adapts_exactly_as_one_that_was_not():
    """ADA's p and its signal since the last adjustment are in the checkpoint (its ramp in
    the schedule, which the same config resolves again)."""
    import copy

    from gan.training.loop import Trainer

    recipe = {"augment": ("color", "translation"), "augment_p": "auto", "r1_gamma": 0.5,
              "r1_every": 3}  # fmt: skip
    whole = trainer("hinge", **recipe)
    expected = [(float(s.d_loss), float(s.augment_p)) for s in
                (whole.train_step() for _ in range(22))]  # fmt: skip
    assert len({p for _, p in expected}) > 3  # p moved in several small steps

    first = trainer("hinge", **recipe)
    for _ in range(10):  # stops mid-interval: the signal gathered so far must survive
        first.train_step()
    state = copy.deepcopy(first.parts.state_dict())
    made = trainer("hinge", **recipe)
    made.parts.load_state_dict(state)
    second = Trainer(made.parts, made.schedule, made.checkpointer, step=10)
    steps = (second.train_step() for _ in range(12))
    rest = [(float(s.d_loss), float(s.augment_p)) for s in steps]
    assert rest == expected[10:]


def test_a_fixed_strength_given_on_resume_wins_over_the_saved_one():
    state = trainer("ns", augment=("translation",), augment_p=0.0).parts.state_dict()
    resumed = trainer("ns", augment=("translation",), augment_p=1.0)
    resumed.parts.load_state_dict(state)
    assert float(resumed.parts.recipe.augment.p) == 1.0 and not resumed.parts.recipe.augment.off
