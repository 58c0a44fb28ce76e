"""The training loop (`gan.training`): accumulation, determinism, parts, the NaN guard."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from gan.config import Config, OptimConfig, TrainConfig
from gan.errors import Diverged
from gan.rng import seed_everything
from gan.training.batches import DeviceBatches
from gan.training.build import trainer_of
from gan.training.grids import GridWriter
from gan.training.loop import FitResult, Trainer
from gan.training.reporter import Reporter
from gan.training.runtime import build_runtime
from gan.training.step import d_backward, g_backward

CPU = torch.device("cpu")


class TinyG(nn.Module):
    """No batch statistics, no dropout: micro-batch gradients must add up exactly."""

    def __init__(self):
        super().__init__()
        self.latent_shape = (8,)
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 64), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, 1, 8, 8)


class TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1)
        )

    def forward(self, x):
        return self.net(x).squeeze(1)


def make_trainer(batch=8, accumulation=1, seed=0, log=None, **train) -> Trainer:
    seed_everything(seed)
    config = Config(
        optim=OptimConfig(batch_size=batch, accumulation_steps=accumulation),
        train=TrainConfig(seed=seed, **train),
    )
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    batches = DeviceBatches(images, CPU, batch, seed)
    runtime = build_runtime(TinyG(), TinyD(), CPU, ema_decay=config.train.ema_decay)
    t = config.train
    return trainer_of(
        config,
        runtime,
        batches,
        reporter=Reporter(batch * accumulation, t.log_every, log),
        grids=GridWriter(seed, (1, 8, 8), (8,), CPU, log=log),
    )


def grads(module: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]


def test_k_micro_batches_give_the_gradient_of_one_batch_of_k_times_b():
    trainer = make_trainer()
    rt, recipe = trainer.parts.runtime, trainer.parts.recipe
    reals = torch.rand(32, 1, 8, 8) * 2 - 1
    z = torch.randn(32, 8)

    rt.D.zero_grad()
    d_one, *_ = d_backward(rt, recipe, [reals], [z], keep_fakes=False)
    one_d = grads(rt.D)
    rt.G.zero_grad()
    g_one = g_backward(rt, recipe, [z], [])
    one_g = grads(rt.G)

    rt.D.zero_grad()
    d_acc, *_ = d_backward(rt, recipe, list(reals.split(8)), list(z.split(8)), keep_fakes=False)
    acc_d = grads(rt.D)
    rt.G.zero_grad()
    g_acc = g_backward(rt, recipe, list(z.split(8)), [])
    acc_g = grads(rt.G)

    torch.testing.assert_close(d_acc, d_one)
    torch.testing.assert_close(g_acc, g_one)
    for a, b in zip(acc_d + acc_g, one_d + one_g, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_g_pass_leaves_no_gradient_on_d():
    trainer = make_trainer()
    rt, recipe = trainer.parts.runtime, trainer.parts.recipe
    rt.D.zero_grad(set_to_none=True)
    g_backward(rt, recipe, [torch.randn(8, 8)], [])
    assert all(p.grad is None for p in rt.D.parameters())
    assert all(p.requires_grad for p in rt.D.parameters())


def test_one_step_with_accumulation_consumes_b_times_k_images_and_updates_both_nets():
    trainer = make_trainer(batch=4, accumulation=3)
    rt = trainer.parts.runtime
    g_before = [p.clone() for p in rt.G.parameters()]
    d_before = [p.clone() for p in rt.D.parameters()]
    stats = trainer.train_step()
    assert trainer.parts.draws.batches.position == 12
    assert trainer.step == 1
    assert all(math.isfinite(float(v)) for v in vars(stats).values() if v is not None)
    assert any(not torch.equal(a, b) for a, b in zip(g_before, rt.G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, rt.D.parameters(), strict=True))


def test_same_seed_same_losses_on_cpu():
    runs = []
    for _ in range(2):
        trainer = make_trainer(seed=3)
        runs.append([float(trainer.train_step().d_loss) for _ in range(5)])
    assert runs[0] == runs[1]
    other = make_trainer(seed=4)
    assert [float(other.train_step().d_loss) for _ in range(5)] != runs[0]


def test_total_steps_from_epochs_and_max_steps():
    assert make_trainer(batch=8, epochs=2).schedule.total == 16  # 2 x 64 images / 8
    assert make_trainer(batch=8, accumulation=2, epochs=1).schedule.total == 4
    assert make_trainer(batch=8, epochs=5, max_steps=7).schedule.total == 7
    assert make_trainer(batch=8, max_steps=3).schedule.total == 3


def test_train_logs_interval_means_to_the_tracker():
    class Recorder:
        def __init__(self):
            self.records, self.scalar_tags, self.images = [], set(), []

        def scalars(self, step, values):
            self.scalar_tags |= set(values)

        def image(self, tag, image, step):
            self.images.append((tag, tuple(image.shape), step))

        def history(self, record):
            self.records.append(record)

        def close(self):
            pass

    recorder = Recorder()
    trainer = make_trainer(
        max_steps=7, log_every=3, sample_every=5, checkpoint_every=100, log=recorder
    )
    result = trainer.fit()
    assert isinstance(result, FitResult) and result.step == 7 and not result.interrupted
    assert result.last == recorder.records[-1]
    assert [r["step"] for r in recorder.records] == [3, 6, 7]  # and always the last step
    for record in recorder.records:
        for key in ("step", "epoch", "g_loss", "d_loss", "images_per_s"):
            assert key in record
        assert isinstance(record["d_loss"], float)
    assert {"loss/g", "loss/d", "perf/images_per_s"} <= recorder.scalar_tags
    assert [step for _, _, step in recorder.images] == [5, 7]


def test_ema_tracks_g_and_is_what_grids_use():
    trainer = make_trainer(ema_decay=0.9)
    for _ in range(3):
        trainer.train_step()
    rt = trainer.parts.runtime
    ema = rt.G_ema
    assert int(ema.n_averaged) == 3
    assert rt.sampling_generator is ema.module
    g = dict(rt.G.named_parameters())
    assert any(not torch.equal(p, g[name]) for name, p in ema.module.named_parameters())
    state = trainer.parts.state_dict()["runtime"]
    assert state["ema_updates"] == 3 and state["generator_ema"].keys() == rt.G.state_dict().keys()
    assert make_trainer(ema_decay=0).parts.runtime.sampling_generator is not None


def test_ema_copies_integer_buffers_of_batchnorm():
    from gan.models import build_models

    seed_everything(0)
    generator, _ = build_models("dcgan-proj", (1, 8, 8), 4)
    from gan.training.ema import EMA

    ema = EMA(generator, 0.99)
    for _ in range(2):
        generator(torch.randn(4, 4))  # BatchNorm counts batches
        ema.update_parameters(generator)
    counts = [b for n, b in ema.module.named_buffers() if n.endswith("num_batches_tracked")]
    assert counts and all(int(c) == 2 for c in counts)


def test_parts_own_their_state_and_a_restore_continues_exactly():
    first = make_trainer(seed=5, eval_every=None)
    for _ in range(3):
        first.train_step()
    first.parts.reporter.best_fid = 12.5
    state = copy.deepcopy(first.parts.state_dict())  # state dicts share the live tensors
    assert set(state) == {"runtime", "recipe", "draws", "grids", "reporter", "loop"}
    assert state["grids"]["fixed_latents"].shape == first.parts.grids.latents.shape
    expected = [float(first.train_step().g_loss) for _ in range(3)]

    second = make_trainer(seed=5)  # the same data; weights, position and RNGs move on ...
    for _ in range(2):
        second.train_step()
    second.parts.grids.latents = torch.zeros_like(second.parts.grids.latents)
    second.parts.load_state_dict(state)  # ... until restored, and the loop goes on at 3
    resumed = Trainer(second.parts, second.schedule, second.checkpointer, step=3)
    assert second.parts.reporter.best_fid == 12.5
    assert torch.equal(second.parts.grids.latents, first.parts.grids.latents)
    assert [float(resumed.train_step().g_loss) for _ in range(3)] == expected


def test_a_non_finite_loss_stops_the_run_before_any_checkpoint_is_written(tmp_path):
    from gan.cli.options import cli_message
    from gan.runs.folders import RunPaths
    from gan.training.checkpointer import Checkpointer

    made = make_trainer(max_steps=6, log_every=2, checkpoint_every=1)
    checkpointer = Checkpointer(made.parts, made.schedule, 5, RunPaths(tmp_path, "r"))
    trainer = Trainer(made.parts, made.schedule, checkpointer)
    for p in trainer.parts.runtime.D.parameters():
        p.data.fill_(float("nan"))
    with pytest.raises(Diverged) as caught:
        trainer.fit()
    assert not list(tmp_path.rglob("*.pt"))  # the NaN weights were never written
    assert "--lr-g" not in str(caught.value)  # the library names no flags ...
    assert "lower --lr-g/--lr-d" in cli_message(caught.value)  # ... the command line does


def test_the_loop_imports_no_data_source():
    import subprocess
    import sys

    code = (
        "import sys, gan.training.loop\n"
        "bad = [m for m in sys.modules if m.startswith(('gan.data', 'gan.metrics', 'boto3'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
