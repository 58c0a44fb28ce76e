"""Truncation, latent walks (grid and GIF), and the copy check `gan evaluate --metrics nn`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from gan.metrics.copies import copy_scores
from gan.metrics.evaluate import Evaluator
from gan.models.generate import slerp, truncated_normal, walk_latents
from tests.conftest import MNIST_1K, error_lines, run_cli


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("ckpt")
    done = run_cli("train", "--data", MNIST_1K, "--model", "mlp", "--max-steps", "2",
                   "--batch-size", "8", "--device", "cpu", "--workdir", work, cwd=work)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return work / "checkpoints" / "last.pt"


@pytest.mark.parametrize("psi", [0.5, 1.0, 2.0])
def test_truncated_latents_have_the_truncated_normals_statistics(psi):
    z = truncated_normal((200_000,), psi, torch.Generator().manual_seed(0))
    assert float(z.abs().max()) <= psi
    # Var of N(0, 1) truncated to [-psi, psi]: 1 - 2 psi phi(psi) / (2 Phi(psi) - 1).
    phi = math.exp(-(psi**2) / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(psi / math.sqrt(2))
    assert float(z.var()) == pytest.approx(1 - 2 * psi * phi / mass, rel=0.02)
    assert abs(float(z.mean())) < 0.01
    untruncated = truncated_normal((1000,), None, torch.Generator().manual_seed(0))
    assert torch.equal(untruncated, torch.randn(1000, generator=torch.Generator().manual_seed(0)))


def test_slerp_walks_from_one_latent_to_the_other_on_the_shell():
    a, b = torch.randn(3, 100), torch.randn(3, 100)
    path = slerp(a, b, torch.linspace(0, 1, 7))
    assert path.shape == (3, 7, 100)
    torch.testing.assert_close(path[:, 0], a)
    torch.testing.assert_close(path[:, -1], b)
    norms = path.norm(dim=2)
    assert float((norms - 10).abs().max()) < 3  # near sqrt(100), not through the origin
    assert walk_latents(2, 4, (8, 7, 7), seed=1, truncation=None).shape == (2, 4, 8, 7, 7)


def test_interpolation_grid_and_gif(checkpoint, tmp_path):
    grid = run_cli("sample", checkpoint, "--interpolate", "5", "--num", "3", "--out",
                   tmp_path / "walk.png", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert grid.returncode == 0, grid.stderr
    with Image.open(tmp_path / "walk.png") as picture:
        assert picture.size == (5 * 30 + 2, 3 * 30 + 2)  # 5 steps a row, 3 walks
    gif = run_cli("sample", checkpoint, "--interpolate", "6", "--num", "4", "--format", "gif",
                  "--out", tmp_path / "walk", "--truncation", "1", "--device", "cpu",
                  cwd=tmp_path)  # fmt: skip
    assert gif.returncode == 0, gif.stderr
    with Image.open(tmp_path / "walk.gif") as animation:
        assert animation.n_frames == 6 and animation.size == (2 * 30 + 2, 2 * 30 + 2)


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--truncation", "0"], "--truncation 0.0 must be at least 0.04"),
        (["--interpolate", "1"], "--interpolate 1 must be at least 2"),
        (["--format", "gif"], "give --interpolate"),
    ],
)
def test_bad_sampling_values_are_one_sentence(checkpoint, tmp_path, args, phrase):
    done = run_cli("sample", checkpoint, *args, "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 1 and phrase in done.stderr and len(error_lines(done)) == 1


# ---- the copy check ----------------------------------------------------------------------------


def _digits() -> torch.Tensor:
    from gan.config import DataConfig
    from gan.data import load_dataset

    return load_dataset(DataConfig(name="mnist", source=str(MNIST_1K))).images


class Replay(nn.Module):
    """A "generator" that returns given images in order, whatever the latents."""

    latent_shape = (4,)

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images, self.next = images.float() / 127.5 - 1, 0
        self.anchor = nn.Parameter(torch.zeros(()))  # a device to be on

    def forward(self, z):
        out = self.images[self.next : self.next + len(z)]
        self.next += len(z)
        return out


def test_copy_scores_tell_copies_from_new_images():
    digits = _digits().float() / 255
    train, held_out = digits[:600], digits[600:900]
    copies = copy_scores(train, train[:300])
    fresh = copy_scores(train, held_out)
    assert copies["median_ratio"] < 1e-6 and copies["share_closer_than_closest_pair"] == 1
    assert fresh["median_ratio"] > 0.7 and fresh["share_closer_than_closest_pair"] < 0.05


def test_evaluate_nn_flags_a_generator_that_returns_training_images():
    digits = _digits()
    train, held_out = digits[:600], digits[600:900]
    evaluator = Evaluator(train, "mnist-lenet", None, 300, torch.device("cpu"), batch=100)
    copied = evaluator(Replay(train[:300]), ("nn",))
    fresh = evaluator(Replay(held_out), ("nn",))
    for space in ("pixel", "feature"):
        assert copied[f"nn_{space}_median_ratio"] < 0.01
        assert copied[f"nn_{space}_share_closer_than_closest_pair"] > 0.99
        assert fresh[f"nn_{space}_median_ratio"] > 0.5
        assert fresh[f"nn_{space}_share_closer_than_closest_pair"] < 0.05
    assert json.dumps(fresh)  # plain numbers, as the report needs


def test_copy_scores_survive_duplicates_in_the_training_set():
    digits = _digits().float() / 255
    train = torch.cat([digits[:300], digits[:5]])  # five images twice, as blank slices are
    copies = copy_scores(train, digits[:300])
    assert copies["median_ratio"] < 1e-6 and copies["share_closer_than_closest_pair"] > 0.95


def test_nrow_alone_on_a_conditional_checkpoint_is_bounded(tmp_path):
    from tests.conftest import MNIST_1K, run_cli

    done = run_cli("train", "--data", MNIST_1K, "--max-steps", "1", "--batch-size", "4",
                   "--device", "cpu", "--workdir", tmp_path, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    ckpt = tmp_path / "checkpoints" / "last.pt"
    ok = run_cli("sample", ckpt, "--nrow", "3", "--device", "cpu", cwd=tmp_path)
    assert ok.returncode == 0 and "Wrote 30 image(s)" in ok.stderr  # a row of 3 per digit
    big = run_cli("sample", ckpt, "--nrow", "65536", "--device", "cpu", cwd=tmp_path)
    expected = "655,360 images of 28x28, more than gan sample makes at once (100,000)"
    assert big.returncode == 1 and expected in big.stderr
