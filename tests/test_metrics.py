"""Sample-quality metrics: correctness against references, feature networks, CLI and training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from gan.data import DataConfig, load_dataset
from gan.errors import GanError
from gan.metrics import FEATURES, default_features
from gan.metrics.evaluate import Evaluator, extract, parse_metrics
from gan.metrics.features import ImageNetStyle, RandomConv, lenet_recipe, load_lenet
from gan.metrics.scores import fid, kid, precision_recall
from tests.conftest import MNIST_1K, error_lines, run_cli


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@pytest.fixture(scope="module")
def gaussians():
    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(8, 8, generator=gen) * 0.3 + torch.eye(8)
    a = torch.randn(4000, 8, generator=gen, dtype=torch.float64) @ mix.double()
    b = torch.randn(4000, 8, generator=gen, dtype=torch.float64) @ mix.double()
    return a, b


def test_fid_matches_scipy_on_gaussian_features(gaussians):
    a, b = gaussians
    shifted = b + torch.tensor([1.0, -2.0, 0.5, 0, 0, 0, 0, 0], dtype=torch.float64)
    for x, y in ((a, b), (a, shifted), (a, b * 1.5)):
        assert fid(x, y) == pytest.approx(scipy_fid(x.numpy(), y.numpy()), rel=1e-6, abs=1e-6)


def test_fid_known_answers(gaussians):
    a, b = gaussians
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fid(a, b) < 0.05  # same distribution, independent samples
    shift = torch.tensor([1.0, -2.0, 0.5, 0, 0, 0, 0, 0], dtype=torch.float64)
    assert fid(a, a + shift) == pytest.approx(float(shift.square().sum()), rel=1e-6)


def test_kid_near_zero_for_identical_sets_and_large_for_different(gaussians):
    a, b = gaussians
    same, _ = kid(a, a)
    different, _ = kid(a, b + 1.0)
    assert abs(same) < 0.02 * different


def test_precision_recall_identical_and_disjoint(gaussians):
    a, b = gaussians
    assert precision_recall(a, a) == (1.0, 1.0)
    precision, recall = precision_recall(a, a + 50.0)
    assert precision == 0.0 and recall == 0.0
    p_half, _ = precision_recall(a, torch.cat([b[:2000], b[2000:] + 50.0]))
    assert 0.4 < p_half < 0.6  # half the fakes are far from the real manifold


def test_fid_real_vs_real_on_mnist_is_near_zero():
    images = load_dataset(DataConfig(name="mnist", source=str(MNIST_1K))).images
    net = load_lenet()
    feats = extract(net, images.float() / 255, torch.device("cpu"), 250)
    assert fid(feats, feats) == pytest.approx(0.0, abs=1e-3)
    halves = fid(feats[:500], feats[500:])
    noise = extract(net, torch.rand(500, 1, 28, 28), torch.device("cpu"), 250)
    assert halves < 0.05 * fid(feats[:500], noise)


def test_lenet_ships_with_its_recipe_and_classifies_digits():
    recipe = lenet_recipe()
    assert recipe["held_out_accuracy"] > 0.97 and "command" in recipe
    from gan.metrics.features import WEIGHTS_DIR

    assert (WEIGHTS_DIR / "mnist-lenet.pt").stat().st_size < 2_000_000
    images = load_dataset(DataConfig(name="mnist", source=str(MNIST_1K))).images[:200].float() / 255
    labels = np.frombuffer(
        __import__("gzip").decompress((MNIST_1K / "t10k-labels-idx1-ubyte.gz").read_bytes()),
        dtype=np.uint8, offset=8,
    )[:200]  # fmt: skip
    predicted = load_lenet().logits(images).argmax(1).numpy()
    assert (predicted == labels).mean() > 0.95


def test_feature_networks_registered_and_defaults():
    assert set(FEATURES.names()) == {"mnist-lenet", "random-conv", "inception"}
    assert default_features((1, 28, 28)) == "mnist-lenet"
    assert default_features((1, 200, 160)) == "random-conv"
    net = RandomConv()
    out = net(torch.rand(3, 1, 200, 160))
    assert out.shape == (3, RandomConv.num_features)
    assert torch.equal(
        RandomConv()(torch.ones(1, 3, 32, 32)), RandomConv()(torch.ones(1, 3, 32, 32))
    )


def test_inception_without_weights_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("GAN_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(GanError, match="--features-weights"):
        FEATURES.get("inception")(None)


def test_inception_adapter_plumbing_with_a_tiny_random_network():
    """Grayscale becomes 3 channels of uint8 (the standard FID input); features are flat."""
    seen = {}

    class Tiny(torch.nn.Module):
        def forward(self, x):
            seen["dtype"], seen["shape"] = x.dtype, tuple(x.shape)
            return (x.float().mean(dim=(2, 3)),)

    net = ImageNetStyle(Tiny(), 3)
    out = net(torch.rand(4, 1, 28, 28))
    assert seen == {"dtype": torch.uint8, "shape": (4, 3, 28, 28)} and out.shape == (4, 3)


def test_parse_metrics():
    assert parse_metrics("fid, pr") == ("fid", "pr")
    with pytest.raises(GanError):
        parse_metrics("fid,is")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The MNIST default model trained for 300 steps on 1,000 digits, with FID during
    training."""
    workdir = tmp_path_factory.mktemp("trained")
    result = run_cli(
        "train", "--data", str(MNIST_1K), "--device", "cpu", "--max-steps", "300",
        "--no-conditional", "--lr-g", "4e-4", "--lr-decay", "0",  # a plain G that learns fast
        "--batch-size", "32", "--eval-every", "150", "--eval-samples", "500",
        "--checkpoint-every", "1000", "--run-name", "t", "--workdir", str(workdir), cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return workdir


def test_trained_model_scores_clearly_better_than_untrained(trained):
    from gan.models import build_models
    from gan.outputs.generator import generator_from_checkpoint

    images = load_dataset(DataConfig(name="mnist", source=str(MNIST_1K))).images
    evaluator = Evaluator(images, None, None, 1000, torch.device("cpu"))
    generator, state = generator_from_checkpoint(
        trained / "checkpoints" / "last.pt", torch.device("cpu")
    )
    untrained, _ = build_models(state["model"]["name"], (1, 28, 28), 100)
    before, after = evaluator(untrained)["fid"], evaluator(generator)["fid"]
    assert after < 0.5 * before


def test_eval_every_logs_fid_and_keeps_best(trained):
    records = [json.loads(x) for x in (trained / "logs" / "t" / "history.jsonl").open()]
    fids = [r["fid"] for r in records if "fid" in r]
    assert len(fids) == 2
    best = torch.load(trained / "checkpoints" / "t" / "best.pt", weights_only=True)
    assert best["reporter"]["best_fid"] == pytest.approx(min(fids))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trained / "logs" / "t"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("metrics/fid")] == [150, 300]
    plot = run_cli("plot-history", cwd=trained)
    assert plot.returncode == 0, plot.stderr


def test_evaluate_cli_prints_json_last_and_writes_it_into_the_run(trained):
    ckpt = trained / "checkpoints" / "last.pt"
    result = run_cli("evaluate", str(ckpt), "--data", MNIST_1K, "--num-samples", "500",
                     "--device", "cpu", cwd=trained)  # fmt: skip
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) >= {"fid", "kid", "precision", "recall", "num_samples", "features"}
    assert last["features"] == "mnist-lenet" and last["num_samples"] == 500
    (report,) = (trained / "logs" / last["run"]).glob(f"eval-{last['step']:07d}-*.json")
    assert json.loads(report.read_text()) == last
    again = run_cli("evaluate", str(ckpt), "--data", MNIST_1K, "--num-samples", "500",
                    "--device", "cpu", "--metrics", "fid", cwd=trained)  # fmt: skip
    assert json.loads(again.stdout.strip().splitlines()[-1])["fid"] == pytest.approx(last["fid"])


def test_evaluate_bad_inputs(trained, tmp_path):
    ckpt = str(trained / "checkpoints" / "last.pt")
    for args, phrase in (
        (["--metrics", "fid,is"], "--metrics"),
        (["--features", "vgg"], "Unknown feature network"),
        (["--features", "inception"], "--features-weights"),
        (
            ["--features", "inception", "--features-weights", str(tmp_path / "no.pth")],
            "do not exist",
        ),
    ):
        result = run_cli("evaluate", ckpt, "--data", MNIST_1K, "--num-samples", "10",
                         "--device", "cpu", *args, cwd=tmp_path)  # fmt: skip
        assert result.returncode == 1, (args, result.stderr)
        assert phrase in result.stderr and len(error_lines(result)) == 1


def test_eval_every_observes_without_changing_what_is_trained(tmp_path):
    """Building the feature network and scoring run on forked random streams: the same
    run with and without FID during training ends with the same weights."""
    import gan

    options = dict(
        data=str(MNIST_1K), device="cpu", max_steps=12, batch_size=16, checkpoint_every=1000
    )
    plain = gan.train(run_name="plain", workdir=str(tmp_path), **options)
    scored = gan.train(
        run_name="scored", workdir=str(tmp_path), eval_every=6, eval_samples=100, **options
    )
    a = torch.load(tmp_path / plain.checkpoint, weights_only=True)
    b = torch.load(tmp_path / scored.checkpoint, weights_only=True)
    assert b["reporter"]["best_fid"] is not None
    for part in ("generator", "discriminator"):
        for name, tensor in a["runtime"][part].items():
            assert torch.equal(tensor, b["runtime"][part][name]), f"{part} {name}"
