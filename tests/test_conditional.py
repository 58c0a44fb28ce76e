"""Class-conditional training and sampling: labels from the data, through the batch stream,
models, training, checkpoints, resume (one and two processes) and `gan sample --label`."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.checkpoint import load_checkpoint
from gan.config import Config, DataConfig, OptimConfig, TrainConfig
from gan.config.catalog import MODELS
from gan.data import load_dataset
from gan.models import build_models
from gan.models.generate import generate_all
from gan.rng import seed_everything
from gan.training.batches import DeviceBatches
from gan.training.build import trainer_of
from gan.training.runtime import build_runtime
from tests.conftest import MNIST_1K, run_cli, run_gan
from tests.s3_server import make_bps_dataset

pytest_plugins = ["tests.s3_server"]

CPU = torch.device("cpu")
TINY = ("--device", "cpu", "--batch-size", "8", "--log-every", "1", "--sample-every", "1000")
BPS_URI = "s3://bps-cond/Microscopy/train/"


def png_bytes(value: int, size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def one_sentence(done, *phrases: str) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, done.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]
    return errors[0]


# ---- labels from the data ----------------------------------------------------------------------


def test_mnist_labels_are_the_digits_of_the_label_file():
    data = load_dataset(DataConfig(name="mnist", source=str(MNIST_1K)))
    raw = gzip.decompress((MNIST_1K / "t10k-labels-idx1-ubyte.gz").read_bytes())[8:]
    assert data.classes == tuple("0123456789")
    assert data.labels.tolist() == list(raw)
    assert sum(data.summary()["classes"].values()) == len(data.images) == 1000


def test_folder_labels_are_subfolder_names_and_skip_unreadable_files(tmp_path):
    for name, value in [("cats/a.png", 10), ("cats/b.png", 20), ("dogs/c.png", 200)]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(png_bytes(value))
    (tmp_path / "cats" / "broken.png").write_bytes(b"not a png")
    data = load_dataset(DataConfig(name="folder", source=str(tmp_path)))
    assert data.classes == ("cats", "dogs")
    by_value = dict(zip(data.images[:, 0, 0, 0].tolist(), data.labels.tolist(), strict=True))
    assert by_value == {10: 0, 20: 0, 200: 1}  # the broken file took no label with it

    (tmp_path / "loose.png").write_bytes(png_bytes(99))  # not in a subfolder: no labels
    assert load_dataset(DataConfig(name="folder", source=str(tmp_path))).labels is None


@pytest.mark.parametrize(
    ("condition_on", "column", "classes"),
    [
        ("particle", "particle_type", ("Fe", "X-ray")),
        ("hours", "hr_post_exposure", ("4", "24", "48")),
        ("dose", "dose_Gy", None),
    ],
)
def test_bps_labels_follow_condition_on(tmp_path, condition_on, column, classes):
    rows = make_bps_dataset(tmp_path, n=18)
    data = load_dataset(
        DataConfig(name="bps", source=str(tmp_path), image_size=(16, 16), condition_on=condition_on)
    )
    ordered = sorted(rows, key=lambda r: r["filename"])  # the loader's order
    names = [data.classes[i] for i in data.labels.tolist()]
    assert [float(n) if column == "dose_Gy" else n for n in names] == [
        r[column] if column == "dose_Gy" else str(r[column]) for r in ordered
    ]
    if classes is None:  # doses sort by value
        assert [float(c) for c in data.classes] == sorted(float(c) for c in data.classes)
    else:
        assert data.classes == classes


# ---- the batch stream ----------------------------------------------------------------------------


def numbered(n: int) -> torch.Tensor:
    return torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()


def ids(batch: torch.Tensor) -> list[int]:
    return ((batch[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()


def test_labels_travel_with_their_images_across_epochs_resume_and_shards():
    images, labels = numbered(50), torch.arange(50) % 7
    one = DeviceBatches(images, CPU, 16, seed=3, labels=labels)
    seen = []
    for _ in range(8):  # 128 images: across two epoch boundaries
        batch, y = one.next_labelled()
        assert [i % 7 for i in ids(batch)] == y.tolist()
        seen.append((ids(batch), y.tolist()))

    resumed = DeviceBatches(images, CPU, 16, seed=3, labels=labels)
    resumed.position = 3 * 16
    again = [resumed.next_labelled() for _ in range(5)]
    assert [(ids(b), y.tolist()) for b, y in again] == seen[3:]

    ranks = [DeviceBatches(images, CPU, 8, 3, r, 2, labels=labels) for r in range(2)]
    for want_ids, want_y in seen:
        pairs = [r.next_labelled() for r in ranks]
        assert sum((ids(b) for b, _ in pairs), []) == want_ids
        assert sum((y.tolist() for _, y in pairs), []) == want_y


# ---- models -------------------------------------------------------------------------------------

SHAPES = {"mlp": (1, 16, 16), "dcgan": (1, 16, 16), "dcgan-proj": (1, 16, 16),
          "fc-dcgan": (1, 16, 16), "mri": (1, 32, 32), "resgan": (1, 32, 32),
          "fastgan": (1, 32, 32)}  # fmt: skip


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_takes_labels_and_its_checkpoint_round_trips(name):
    torch.manual_seed(0)
    shape = SHAPES[name]
    g, d = build_models(name, shape, 16, classes=3)
    g.eval(), d.eval()
    z, x = torch.randn(4, *g.latent_shape), torch.rand(4, *shape) * 2 - 1
    y = torch.tensor([0, 1, 2, 0])
    assert g(z, y).shape == (4, *shape) and d(x, y).shape == (4,)
    # D's projection makes the same image score differently under different classes.
    assert not torch.allclose(d(x, torch.zeros_like(y)), d(x, torch.ones_like(y)))
    with torch.no_grad():  # give every class its own conditioning, then G depends on y
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    assert not torch.allclose(g(z, torch.zeros_like(y)), g(z, torch.full_like(y, 2)))
    g2, _ = build_models(name, shape, 16, classes=3)
    g2.load_state_dict(g.state_dict())
    g2.eval()
    assert torch.equal(g2(z, y), g(z, y))


def test_conditional_training_learns_what_each_class_looks_like():
    """Two classes, dark and bright images: after a short run G(z, bright) is brighter."""
    seed_everything(0)
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(256) % 2
    noise = torch.randint(0, 40, (256, 1, 8, 8), generator=gen)
    images = (noise + labels.view(-1, 1, 1, 1) * 200).to(torch.uint8)
    config = Config(optim=OptimConfig(batch_size=32), train=TrainConfig(max_steps=150, seed=0))
    g, d = build_models("mlp", (1, 8, 8), 16, classes=2)
    runtime = build_runtime(g, d, CPU, lr=(1e-3, 1e-3), ema_decay=0)
    trainer = trainer_of(config, runtime, DeviceBatches(images, CPU, 32, 0, labels=labels))
    for _ in range(150):
        trainer.train_step()
    dark = generate_all(g, 64, seed=1, labels=torch.zeros(64, dtype=torch.long))
    bright = generate_all(g, 64, seed=1, labels=torch.ones(64, dtype=torch.long))
    assert bright.mean() - dark.mean() > 1.0, (dark.mean(), bright.mean())  # of a range of 2


# ---- the command line ----------------------------------------------------------------------------


def train(work: Path, *args: str):
    done = run_cli("train", "--data", MNIST_1K, "--conditional", *TINY, "--workdir", work, *args,
                   cwd=work)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_conditional_mnist_resumes_exactly_and_samples_by_class(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    whole.mkdir(), split.mkdir()
    train(whole, "--max-steps", "12", "--run-name", "r")
    train(split, "--max-steps", "12", "--stop-at", "6", "--run-name", "r")  # the same plan
    train(split, "--resume", "auto")
    a, b = (load_checkpoint(w / "checkpoints" / "last.pt") for w in (whole, split))
    assert a["model"]["classes"] == list("0123456789") and b["step"] == 12
    for key in ("generator", "discriminator"):
        for name, tensor in a["runtime"][key].items():
            assert torch.equal(b["runtime"][key][name], tensor), (key, name)

    # The reals grid has a digit a row too: every tile of row k is a real image of digit k.
    with Image.open(whole / "assets" / "r" / "reals.png") as picture:
        assert picture.size == (8 * 30 + 2, 10 * 30 + 2)
        tiles = np.asarray(picture.convert("L"))
    data = load_dataset(DataConfig(name="mnist", source=str(MNIST_1K)))
    for row in range(10):
        digits = data.images[data.labels == row][:, 0].numpy()
        for col in range(8):
            tile = tiles[2 + 30 * row : 30 + 30 * row, 2 + 30 * col : 30 + 30 * col]
            assert (np.abs(digits.astype(int) - tile).max(axis=(1, 2)) <= 1).any(), (row, col)

    last = whole / "checkpoints" / "last.pt"
    sevens = run_cli("sample", last, "--label", "7", "--num", "5", "--format", "png", "--out",
                     tmp_path / "sevens", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert sevens.returncode == 0, sevens.stderr
    assert sorted(p.name for p in (tmp_path / "sevens").iterdir()) == [
        f"{i:05d}.png" for i in range(5)
    ]
    grid = run_cli("sample", last, "--out", tmp_path / "grid.png", "--device", "cpu",
                   cwd=tmp_path)  # fmt: skip
    assert grid.returncode == 0, grid.stderr
    with Image.open(tmp_path / "grid.png") as picture:
        assert picture.size == (8 * 30 + 2, 10 * 30 + 2)  # a row of 8 per digit
    per_class = run_cli("sample", last, "--num", "20", "--format", "png", "--out",
                        tmp_path / "all", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert per_class.returncode == 0, per_class.stderr
    folders = sorted((tmp_path / "all").iterdir())
    assert [f.name for f in folders] == list("0123456789")
    assert all(len(list(f.iterdir())) == 2 for f in folders)
    gif = run_cli("sample", last, "--label", "3", "--interpolate", "4", "--num", "2", "--format",
                  "gif", "--out", tmp_path / "walk", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert gif.returncode == 0, gif.stderr
    with Image.open(tmp_path / "walk.gif") as animation:
        assert animation.n_frames == 4


def test_conditional_bps_from_s3_samples_one_particle_type(s3, tmp_path):
    s3.bucket("bps-cond")
    make_bps_dataset(BPS_URI, n=24, s3=s3)
    done = run_cli("train", "--dataset", "bps", "--data", BPS_URI, "--conditional", "--model",
                   "mri", "--image-size", "32x32", "--max-steps", "3", *TINY, "--workdir",
                   tmp_path, "--run-name", "bps", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    last = tmp_path / "checkpoints" / "last.pt"
    assert load_checkpoint(last)["model"]["classes"] == ["Fe", "X-ray"]
    run = json.loads((tmp_path / "logs" / "bps" / "run.json").read_text())
    assert run["dataset"]["classes"] == {"Fe": 12, "X-ray": 12}
    fe = run_cli("sample", last, "--label", "Fe", "--num", "5", "--format", "png", "--out",
                 tmp_path / "fe", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert fe.returncode == 0, fe.stderr
    written = sorted((tmp_path / "fe").iterdir())
    assert len(written) == 5 and all(p.suffix == ".png" for p in written)
    message = one_sentence(
        run_cli("sample", last, "--label", "proton", "--device", "cpu", cwd=tmp_path),
        "--label 'proton'",
        "Fe, X-ray",
    )
    assert message.endswith(".")


def test_label_on_an_unconditional_checkpoint_is_one_sentence(tmp_path):
    done = run_cli("train", "--data", MNIST_1K, "--model", "mlp", "--max-steps", "1", *TINY,
                   "--no-conditional", "--workdir", tmp_path, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    one_sentence(
        run_cli("sample", tmp_path / "checkpoints" / "last.pt", "--label", "3", cwd=tmp_path),
        "--label needs a checkpoint trained with --conditional",
    )


def test_conditional_without_labels_is_one_sentence(tmp_path):
    one_sentence(
        run_cli("train", "--dataset", "mri", "--conditional", *TINY, cwd=tmp_path),
        "Dataset 'mri' has no labels",
    )
    (tmp_path / "flat").mkdir()
    for i in range(4):
        (tmp_path / "flat" / f"{i}.png").write_bytes(png_bytes(i * 50))
    flat = run_cli("train", "--dataset", "folder", "--data", tmp_path / "flat", "--conditional",
                   *TINY, "--max-steps", "1", "--workdir", tmp_path, cwd=tmp_path)  # fmt: skip
    one_sentence(flat, "--conditional needs the subfolder each image lies in")


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo")
def test_conditional_resume_under_two_processes_is_exact(tmp_path):
    common = ["train", "--data", str(MNIST_1K), "--conditional", "--model", "mlp", "--nproc",
              "2", *TINY, "--run-name", "r"]  # fmt: skip
    whole, split = tmp_path / "whole", tmp_path / "split"
    # the split run keeps the 8-step plan (--stop-at), which --lr-decay follows
    for work, stop in ((whole, []), (split, ["--stop-at", "4"]), (split, [])):
        work.mkdir(exist_ok=True)
        done = run_gan(*common, "--max-steps", "8", *stop, "--workdir", str(work), "--resume",
                       "auto-or-new", cwd=work)  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert "Resumed from" in done.stderr
    a, b = (load_checkpoint(w / "checkpoints" / "last.pt") for w in (whole, split))
    assert b["step"] == 8 and b["loop"]["world_size"] == 2
    for key in ("generator", "discriminator"):
        for name, tensor in a["runtime"][key].items():
            assert torch.equal(b["runtime"][key][name], tensor), (key, name)
