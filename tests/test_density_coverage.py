"""Density and coverage (Naeem et al. 2020) and intra-class FID: known answers, the
reference implementation's definition, and `gan evaluate` printing them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gan.metrics.scores import density_coverage, fid, intra_fid, precision_recall
from tests.conftest import MNIST_1K, error_lines, run_cli


def reference(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """The definition of clovaai/generative-evaluation-prdc (prdc.compute_prdc), written
    out with numpy in float64: radii are each real's k-th nearest other real; a fake is
    in a real's ball when strictly nearer than its radius."""
    real_real = np.linalg.norm(real[:, None] - real[None], axis=2)
    radii = np.sort(real_real, axis=1)[:, k]  # column 0 is the point itself
    real_fake = np.linalg.norm(real[:, None] - fake[None], axis=2)
    density = (real_fake < radii[:, None]).sum(axis=0).mean() / k
    coverage = (real_fake.min(axis=1) < radii).mean()
    return float(density), float(coverage)


def gaussian(n: int, dim: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) + shift


def test_identical_sets_score_one_and_far_sets_zero():
    real = gaussian(500, 8, 0)
    # Each real's ball holds itself and its k-1 nearest neighbours (strictly inside):
    # k pairs per real, so density is exactly 1 where no distances tie.
    assert density_coverage(real, real.clone()) == (1.0, 1.0)
    assert density_coverage(real, real + 100.0) == (0.0, 0.0)


def test_a_small_case_worked_by_hand():
    """Reals 0, 1, 3, 7 on a line, k = 2: radii (2nd nearest other real) 3, 2, 3, 6.
    Fakes -0.5 and -0.2 lie in the balls of 0 and 1 (2 pairs each); 6 lies in 7's ball
    and on the edge of 3's (|6 - 3| = 3, not inside: strictly nearer, as the reference);
    20 in none. Density 5 / (2 * 4); coverage 3 of 4 reals (3's ball holds no fake)."""
    real = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    fake = torch.tensor([[-0.5], [-0.2], [6.0], [20.0]])
    assert density_coverage(real, fake, k=2) == (0.625, 0.75)
    assert reference(real.numpy(), fake.numpy(), 2) == (0.625, 0.75)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_the_reference_definition_on_random_sets(k):
    real, fake = gaussian(300, 16, 1), gaussian(400, 16, 2, shift=0.3) * 1.2
    ours = density_coverage(real, fake, k=k)
    assert ours == pytest.approx(reference(real.double().numpy(), fake.double().numpy(), k))


def test_same_distribution_scores_as_the_paper_expects():
    """Naeem et al., Lemma 1 and 2: for fakes from the reals' distribution, E[density] = 1
    and E[coverage] = 1 - prod_{i=1..k} (N - i) / (N + M - i)."""
    n = m = 1000
    k = 5
    runs = [density_coverage(gaussian(n, 4, s), gaussian(m, 4, 100 + s), k) for s in range(4)]
    density = np.mean([d for d, _ in runs])
    coverage = np.mean([c for _, c in runs])
    expected = 1 - math.prod((n - i) / (n + m - i) for i in range(1, k + 1))
    assert density == pytest.approx(1.0, abs=0.05)
    assert coverage == pytest.approx(expected, abs=0.01)


def test_an_outlier_fake_moves_recall_but_not_density_or_coverage():
    """Why dc exists (Naeem et al., Fig. 2): one fake far out, beyond the reals, has a
    k-NN ball that reaches back past them (recall counts reals inside fake balls), but it
    lies in no real's ball."""
    from gan.metrics.scores import precision_recall

    real, fake = gaussian(200, 4, 3), gaussian(200, 4, 4, shift=3.0)
    _, recall = precision_recall(real, fake)
    dc = density_coverage(real, fake)
    outlier = torch.cat([fake[:-1], torch.full((1, 4), -10.0)])
    assert precision_recall(real, outlier)[1] > recall + 0.5
    assert density_coverage(real, outlier) == pytest.approx(dc, abs=0.01)


def test_too_few_reals_for_k_is_one_sentence():
    from gan.errors import GanError

    with pytest.raises(GanError, match="more than 5 real images, not 5; give more real"):
        density_coverage(gaussian(5, 3, 0), gaussian(50, 3, 1))
    density_coverage(gaussian(50, 3, 0), gaussian(2, 3, 1))  # dc needs no fake neighbours
    with pytest.raises(GanError, match="3 generated images, not 3; give a larger --num-s"):
        precision_recall(gaussian(50, 3, 0), gaussian(3, 3, 1))  # pr does: recall's balls


def test_intra_class_fid_known_case():
    """Fakes equal to each class's reals, class 1's shifted by s: FID 0 for class 0,
    |s|^2 for class 1. Fakes of the wrong class: the pooled FID sees nothing (the same
    images), intra-class FID sees the classes swapped."""
    a, b = gaussian(400, 6, 5, shift=0.0), gaussian(400, 6, 6, shift=4.0)
    real = torch.cat([a, b]).double()
    labels = torch.tensor([0] * 400 + [1] * 400)
    shift = torch.tensor([1.0, -2.0, 0, 0, 0, 0], dtype=torch.float64)
    scores = intra_fid(real, labels, torch.cat([a.double(), b.double() + shift]), labels)
    assert scores[0] == pytest.approx(0.0, abs=1e-6)
    assert scores[1] == pytest.approx(5.0, rel=1e-6)
    swapped = intra_fid(real, labels, real, 1 - labels)
    assert fid(real, real) == pytest.approx(0.0, abs=1e-6)
    assert min(swapped.values()) > 4 * 4 * 6 * 0.9  # the class means lie 4 apart in 6 dims
    one = intra_fid(real, labels, real[:401], labels[:401])  # 1 fake of class 1: left out
    assert set(one) == {0}


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    """A two-step MNIST run on 1,000 digits (conditional: the MNIST default)."""
    workdir = tmp_path_factory.mktemp("dc")
    result = run_cli("train", "--run-name", "cond", "--device", "cpu", "--max-steps", "2",
                     "--batch-size", "16", "--workdir", workdir, "--data", MNIST_1K,
                     cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return workdir / "checkpoints" / "cond" / "last.pt"


def test_evaluate_prints_density_and_coverage(conditional, tmp_path):
    result = run_cli("evaluate", conditional, "--data", MNIST_1K, "--metrics", "pr,dc",
                     "--num-samples", "200", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = {line.split()[0] for line in result.stdout.splitlines()[:-1]}
    assert {"precision", "recall", "density", "coverage"} <= printed
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["num_real"] == 1000 and last["dc_k"] == 5
    assert 0 <= last["coverage"] <= 1 and last["density"] >= 0


def test_evaluate_intra_class_fid_of_a_conditional_checkpoint(conditional, tmp_path):
    result = run_cli("evaluate", conditional, "--data", MNIST_1K, "--metrics", "ifid",
                     "--num-samples", "300", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    per_class = last["intra_fid_per_class"]
    assert list(per_class) == [str(d) for d in range(10)]
    assert last["intra_fid"] == pytest.approx(np.mean(list(per_class.values())))
    assert last["intra_fid_samples_per_class"] == 30 and "fid" not in last
    assert "fid of" in result.stdout and "class 7" in result.stdout


def test_intra_class_fid_refusals(conditional, tmp_path):
    from gan.data import ImageData
    from gan.errors import GanError
    from gan.outputs.evaluate import class_labels

    images = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
    with pytest.raises(GanError, match="needs a conditional checkpoint"):
        class_labels(ImageData(images, "mnist", "x", labels=torch.zeros(4).long()), (), 10)
    labelled = ImageData(images, "mnist", "x", labels=torch.tensor([0, 1, 1, 0]))
    labelled.classes = ("a", "b")
    with pytest.raises(GanError, match="does not know \\(b\\)"):
        class_labels(labelled, ("a", "c"), 10)
    assert class_labels(labelled, ("c", "b", "a"), 10).tolist() == [2, 1, 1, 2]
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    (unlabelled / "t10k-images-idx3-ubyte.gz").write_bytes(
        (MNIST_1K / "t10k-images-idx3-ubyte.gz").read_bytes()
    )
    for data, count, phrase in (
        (unlabelled, "100", "needs labelled data"),
        (MNIST_1K, "10", "give at least 20"),
    ):
        result = run_cli("evaluate", conditional, "--data", data, "--metrics", "fid,ifid",
                         "--num-samples", count, "--device", "cpu", cwd=tmp_path)  # fmt: skip
        assert result.returncode == 1 and phrase in result.stderr, result.stderr
        assert len(error_lines(result)) == 1


def test_an_unconditional_checkpoint_is_refused_before_the_data_is_read(tmp_path, monkeypatch):
    import gan.outputs.evaluate as scoring
    from gan.checkpoint import save_atomic
    from gan.config import Config
    from gan.models import build_models

    generator, _ = build_models("mlp", (1, 28, 28), 100)
    state = {
        "format_version": 1,
        "step": 1,
        "run_name": "r",
        "model": {"name": "mlp", "image_shape": [1, 28, 28], "latent_dim": 100},
        "generator": generator.state_dict(),
        "config": Config().to_dict(),
    }
    path = save_atomic(state, tmp_path / "plain.pt")
    read = []
    monkeypatch.setattr(scoring, "load_dataset", lambda *a: read.append(a))
    result = run_cli("evaluate", path, "--data", MNIST_1K, "--metrics", "fid,ifid",
                     "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "needs a conditional checkpoint" in result.stderr
    assert len(error_lines(result)) == 1 and not read
