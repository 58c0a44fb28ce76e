"""End to end through the CLI (in-process): train, TensorBoard read back, sample, plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import SHARED_DATA, needs_shared, run_cli

TINY = ["--device", "cpu", "--batch-size", "16", "--log-every", "2"]


def _train(workdir: Path, *args: str) -> Path:
    result = run_cli("train", *TINY, *args, "--workdir", str(workdir), cwd=workdir)
    assert result.returncode == 0, result.stderr
    runs = [p for p in (workdir / "logs").iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory) -> Path:
    """One tiny real run on MNIST (the full test split when ../shared is there)."""
    workdir = tmp_path_factory.mktemp("mnist")
    data = (
        SHARED_DATA
        if (SHARED_DATA / "MNIST").is_dir()
        else Path(__file__).parent / "data" / "mnist-1k"
    )
    _train(
        workdir, "--dataset", "mnist", "--data", str(data), "--max-steps", "12",
        "--sample-every", "5", "--checkpoint-every", "5", "--keep-checkpoints", "2",
        "--run-name", "tiny", "--no-conditional",  # the plain model these tests sample
    )  # fmt: skip
    return workdir


def test_train_writes_the_documented_layout(mnist_run):
    run = "tiny"
    ckpts = sorted(p.name for p in (mnist_run / "checkpoints" / run).glob("step-*.pt"))
    assert ckpts == ["step-0000010.pt", "step-0000012.pt"]  # keep-last-2 pruned step 5
    newest = (mnist_run / "checkpoints" / run / "step-0000012.pt").read_bytes()
    assert (mnist_run / "checkpoints" / "last.pt").read_bytes() == newest
    assert (mnist_run / "checkpoints" / run / "last.pt").read_bytes() == newest
    assets = mnist_run / "assets" / run
    assert {p.name for p in assets.iterdir()} == {
        "reals.png", "samples-0000005.png", "samples-0000010.png", "samples-0000012.png",
    }  # fmt: skip
    with Image.open(assets / "reals.png") as grid:
        assert grid.size == (8 * 30 + 2, 8 * 30 + 2)  # 64 digits, 8 per row, 2 px padding
    logs = mnist_run / "logs" / run
    assert (logs / "train.log").read_text().count("Saved checkpoint") == 3
    assert {p.name for p in logs.iterdir() if "tfevents" not in p.name} == {
        "config.toml", "history.jsonl", "run.json", "train.log", "status.json", ".lock",
    }  # fmt: skip
    assert json.loads((logs / "status.json").read_text())["status"] == "finished"


def test_history_jsonl_has_full_precision_losses(mnist_run):
    lines = (mnist_run / "logs" / "tiny" / "history.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records] == [2, 4, 6, 8, 10, 12]
    for r in records:
        assert {"step", "epoch", "g_loss", "d_loss", "images_per_s"} <= set(r)
        assert r["images_per_s"] > 0
    # full float precision, not rounded for display
    assert any(len(repr(r["d_loss"])) > 8 for r in records)


def test_run_json_records_resolved_config_and_dataset(mnist_run):
    run = json.loads((mnist_run / "logs" / "tiny" / "run.json").read_text())
    assert run["model"]["name"] == "mlp"  # the mnist default
    assert run["data"]["image_size"] == [28, 28]
    assert run["optim"]["batch_size"] == 16
    ds = run["dataset"]
    assert ds["name"] == "mnist" and ds["image_shape"] == [1, 28, 28]
    assert ds["num_images"] in (1000, 10000) and ds["source"].endswith("idx3-ubyte.gz")


def test_tensorboard_events_read_back_with_tensorboards_reader(mnist_run):
    acc = EventAccumulator(str(mnist_run / "logs" / "tiny"), size_guidance={"images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"loss/g", "loss/d", "perf/images_per_s"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("loss/d")] == [2, 4, 6, 8, 10, 12]
    assert "samples" in tags["images"]
    assert [e.step for e in acc.Images("samples")] == [5, 10, 12]
    history = [json.loads(x) for x in (mnist_run / "logs" / "tiny" / "history.jsonl").open()]
    tb = [e.value for e in acc.Scalars("loss/g")]
    assert tb == pytest.approx([r["g_loss"] for r in history], rel=1e-6)


def test_sample_grid_png_and_npy(mnist_run, tmp_path):
    ckpt = str(mnist_run / "checkpoints" / "last.pt")
    grid = run_cli("sample", ckpt, "--num", "16", "--nrow", "4", "--out", str(tmp_path / "g.png"),
                   "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert grid.returncode == 0, grid.stderr
    with Image.open(tmp_path / "g.png") as img:
        assert img.size == (4 * 30 + 2, 4 * 30 + 2)

    one = run_cli("sample", ckpt, "--num", "1", "--format", "png", "--out", str(tmp_path / "one"),
                  "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert one.returncode == 0, one.stderr
    files = list((tmp_path / "one").iterdir())
    assert len(files) == 1
    with Image.open(files[0]) as img:
        assert img.size == (28, 28) and img.mode in ("L", "RGB")

    arr_path = tmp_path / "s.npy"
    npy = run_cli("sample", ckpt, "--num", "5", "--format", "npy", "--out", str(arr_path),
                  "--device", "cpu", "--seed", "7", cwd=tmp_path)  # fmt: skip
    assert npy.returncode == 0, npy.stderr
    arr = np.load(arr_path)
    assert arr.shape == (5, 1, 28, 28) and arr.dtype == np.float32
    assert arr.min() >= 0.0 and arr.max() <= 1.0


def test_sample_default_output_goes_under_assets(mnist_run):
    result = run_cli("sample", "checkpoints/last.pt", "--device", "cpu", cwd=mnist_run)
    assert result.returncode == 0, result.stderr
    out = Path(result.stdout.strip().splitlines()[-1])
    assert (mnist_run / out).is_file() and out.parts[:2] == ("assets", "tiny")


def test_sampling_is_reproducible_by_seed(mnist_run):
    from gan.models.generate import generate, generate_all
    from gan.outputs.generator import generator_from_checkpoint

    generator, state = generator_from_checkpoint(
        mnist_run / "checkpoints" / "last.pt", torch.device("cpu")
    )
    assert state["step"] == 12
    a, b = generate_all(generator, 5, seed=1), generate_all(generator, 5, seed=1)
    assert torch.equal(a, b) and a.shape == (5, 1, 28, 28)
    assert not torch.equal(a, generate_all(generator, 5, seed=2))
    assert [len(x) for x in generate(generator, 5, seed=1, batch_size=2)] == [2, 2, 1]
    latents = torch.randn(3, *generator.latent_shape)
    assert torch.equal(generate_all(generator, latents=latents), generator(latents))


def test_plot_history_default_and_explicit(mnist_run, tmp_path):
    result = run_cli("plot-history", cwd=mnist_run)
    assert result.returncode == 0, result.stderr
    default = mnist_run / "assets" / "tiny" / "losses.png"
    assert default.is_file()
    out = tmp_path / "p.png"
    result = run_cli("plot-history", str(mnist_run / "logs" / "tiny" / "history.jsonl"),
                     "--out", str(out), "--smooth", "3", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert img.size[0] > 400


@needs_shared
def test_mri_from_the_real_nifti_volume(tmp_path):
    run = _train(
        tmp_path, "--dataset", "mri", "--data", str(SHARED_DATA / "mri"), "--max-steps", "2",
        "--batch-size", "4", "--image-size", "64x48", "--sample-every", "2",
    )  # fmt: skip
    info = json.loads((run / "run.json").read_text())
    assert info["dataset"]["image_shape"] == [1, 64, 48]
    assert 130 <= info["dataset"]["num_images"] <= 150
    samples = tmp_path / "assets" / run.name / "samples-0000002.png"
    with Image.open(samples) as img:
        assert img.size == (8 * 50 + 2, 8 * 66 + 2)  # 64 small slices, 8 per row


def test_mri_default_runs_on_the_bundled_sample(tmp_path):
    run = _train(tmp_path, "--dataset", "mri", "--max-steps", "1", "--batch-size", "2",
                 "--accumulation-steps", "2")  # fmt: skip
    info = json.loads((run / "run.json").read_text())
    assert info["dataset"]["image_shape"] == [1, 200, 160]
    assert info["dataset"]["num_images"] == 142
    assert info["model"]["name"] == "fastgan" and info["images_per_step"] == 4
