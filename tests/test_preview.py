"""`gan data preview`: the loader's first images, and beside them the same images
augmented by training's own code; only the images shown are read."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from PIL import Image

from gan.config import DataConfig
from gan.data import load_dataset
from gan.outputs.data_preview import GAP
from tests.conftest import MNIST_1K, error_lines, run_cli
from tests.s3_server import make_bps_dataset

pytest_plugins = ["tests.s3_server"]

MID = 128  # 0 in training's [-1, 1]: what a shifted-in gap or a cut-out square becomes


def halves(path, count, nrow, height, width):
    """The cells of the plain grid and of the augmented one (uint8, H x W each), read back
    from the PNG (torchvision's grid: 2 pixels of padding around every cell)."""
    picture = np.asarray(Image.open(path))[..., 0]
    rows = -(-count // nrow)
    grid_w = nrow * (width + 2) + 2
    assert picture.shape[0] == rows * (height + 2) + 2

    def cells(left):
        return [
            picture[2 + r * (height + 2) :, left + 2 + c * (width + 2) :][:height, :width]
            for r in range(rows)
            for c in range(nrow)
        ][:count]

    if picture.shape[1] == grid_w:
        return cells(0), None
    assert picture.shape[1] == 2 * grid_w + GAP
    return cells(0), cells(grid_w + GAP)


def mnist_preview(tmp_path, *args):
    out = tmp_path / "p.png"
    result = run_cli("data", "preview", "--data", MNIST_1K, "--num", "12", "--nrow", "4",
                     "--out", out, *args, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return halves(out, 12, 4, 28, 28), result


def test_plain_grid_is_the_loaders_images(tmp_path):
    (plain, augmented), result = mnist_preview(tmp_path)
    assert augmented is None and "12 images of 1x28x28" in result.stdout
    loaded = load_dataset(DataConfig(name="mnist", source=str(MNIST_1K))).images[:12, 0]
    assert np.array_equal(np.stack(plain), loaded.numpy())


def test_cutout_changes_exactly_one_square_per_image(tmp_path):
    """With p = 1 every image loses one square of half its side (14 of 28; part of it may
    fall outside): the images differ there, where the augmented one is mid-gray, and
    nowhere else."""
    (plain, augmented), _ = mnist_preview(tmp_path, "--augment", "cutout", "--augment-p", "1")
    full = 0
    for before, after in zip(plain, augmented, strict=True):
        ys, xs = np.nonzero(before != after)
        top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        assert bottom - top <= 14 and right - left <= 14
        assert (after[top:bottom, left:right] == MID).all()
        outside = np.ones_like(before, dtype=bool)
        outside[top:bottom, left:right] = False
        assert np.array_equal(before[outside], after[outside])
        full += (bottom - top, right - left) == (14, 14)
    assert full >= 3  # most squares lie wholly inside


def test_translation_shifts_each_image_filling_with_mid_gray(tmp_path):
    (plain, augmented), _ = mnist_preview(tmp_path, "--augment", "translation", "--augment-p", "1")
    moved = 0
    for before, after in zip(plain, augmented, strict=True):
        padded = np.pad(before, 4, constant_values=MID)
        shifts = [
            (dy, dx)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if np.array_equal(padded[4 + dy : 32 + dy, 4 + dx : 32 + dx], after)
        ]
        assert shifts, "not a shift of up to 1/8 of the image"
        moved += (0, 0) not in shifts
    assert moved >= 6


def test_p_zero_leaves_the_images_alone_and_the_seed_repeats(tmp_path):
    (plain, augmented), _ = mnist_preview(tmp_path, "--augment", "cutout", "--augment-p", "0")
    assert all(np.array_equal(a, b) for a, b in zip(plain, augmented, strict=True))
    (_, first), _ = mnist_preview(tmp_path, "--augment", "cutout,translation", "--seed", "3")
    (_, again), _ = mnist_preview(tmp_path, "--augment", "cutout,translation", "--seed", "3")
    (_, other), _ = mnist_preview(tmp_path, "--augment", "cutout,translation", "--seed", "4")
    assert np.array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(np.stack(first), np.stack(other))


def write_pngs(folder, count, size=(20, 24)):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, size=size, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img-{i:02d}.png")


@pytest.mark.parametrize("dataset", ["mri", "folder", "bps", "mnist"])
def test_every_dataset_previews_with_and_without_augmentation(tmp_path, dataset):
    if dataset == "folder":
        write_pngs(tmp_path / "imgs", 5)
        given = ("--data", tmp_path / "imgs")
    elif dataset == "bps":
        make_bps_dataset(tmp_path / "bps", n=6)
        given = ("--data", tmp_path / "bps", "--image-size", "32x32")
    elif dataset == "mnist":
        given = ("--data", MNIST_1K)
    else:
        given = ()  # the bundled sample, at its 200x160
    for extra in ((), ("--augment", "color,translation,cutout", "--augment-p", "0.5")):
        result = run_cli("data", "preview", "--dataset", dataset, *given, "--num", "4",
                         *extra, cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
        path = tmp_path / f"preview-{dataset}.png"
        assert result.stdout.startswith(f"{path.name}: 4 images of ")
        _, augmented = halves(path, 4, 2, *_cell(dataset))
        assert (augmented is None) == (not extra)


def _cell(dataset):
    return {"mri": (200, 160), "folder": (20, 24), "bps": (32, 32), "mnist": (28, 28)}[dataset]


def test_only_the_images_shown_are_opened(tmp_path, monkeypatch):
    """A folder of one image and many files that would not decode: the preview of the
    first opens that one alone (a full load would open, and skip, them all)."""
    import gan.data.decode as decode

    write_pngs(tmp_path / "imgs", 1)
    for i in range(40):
        (tmp_path / "imgs" / f"junk-{i:02d}.png").write_bytes(b"not a picture")
    opened = []
    real_open = decode._open_image

    def counting(path):
        opened.append(path.name)
        return real_open(path)

    monkeypatch.setattr(decode, "_open_image", counting)
    result = run_cli("data", "preview", "--dataset", "folder", "--data", tmp_path / "imgs",
                     "--num", "1", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert set(opened) == {"img-00.png"} and "Skipped" not in result.stderr


def test_from_s3_it_lists_then_fetches_only_the_objects_shown(s3, tmp_path):
    import io

    s3.bucket("many")
    files = {}
    for i in range(12):
        buffer = io.BytesIO()
        Image.fromarray(np.full((8, 8), i * 8, dtype=np.uint8)).save(buffer, format="PNG")
        files[f"img-{i:02d}.png"] = buffer.getvalue()
    s3.put_many("many", "imgs", files)
    result = run_cli("data", "preview", "--dataset", "folder", "--data", "s3://many/imgs/",
                     "--num", "3", "--no-cache", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(s3.proxy.object_gets("many")) == [f"imgs/img-0{i}.png" for i in range(3)]


def test_mnist_reads_only_the_records_shown(tmp_path):
    """An IDX file that declares 1,000 digits but holds 10: training refuses it as
    truncated; the preview of the first 4 reads no further than they."""
    raw = gzip.decompress((MNIST_1K / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[: 16 + 10 * 784]))
    labels = (MNIST_1K / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(labels)
    info = run_cli("data", "info", "--data", tmp_path, cwd=tmp_path)
    assert info.returncode == 1 and "truncated" in info.stderr
    result = run_cli("data", "preview", "--data", tmp_path, "--num", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plain, _ = halves(tmp_path / "preview-mnist.png", 4, 2, 28, 28)
    first = np.frombuffer(raw[16 : 16 + 4 * 784], dtype=np.uint8).reshape(4, 28, 28)
    assert np.array_equal(np.stack(plain), first)


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["--augment", "cutout", "--augment-p", "auto"], "--augment-p auto adapts"),
        (["--augment", "rotate"], "'rotate' is not none or a combination of"),
        (["--augment-p", "2"], "not auto or a probability"),
    ],
)
def test_bad_augmentation_options_are_one_sentence(tmp_path, args, phrase):
    result = run_cli("data", "preview", "--data", MNIST_1K, "--num", "2", *args, cwd=tmp_path)
    assert result.returncode == 1 and phrase in result.stderr, result.stderr
    assert len(error_lines(result)) == 1


def test_an_out_that_cannot_be_written_is_one_sentence(tmp_path):
    (tmp_path / "file").write_text("kept\n")  # a file where --out needs a folder
    result = run_cli("data", "preview", "--data", MNIST_1K, "--num", "2",
                     "--out", tmp_path / "file" / "p.png", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and len(error_lines(result)) == 1, result.stderr
    assert "Could not write" in result.stderr and "choose another --out" in result.stderr
    assert (tmp_path / "file").read_text() == "kept\n"


def test_classes_on_a_dataset_without_labels_are_refused_as_training_refuses_them(tmp_path):
    # the mri loader reads folders as the folder one does, but its subfolders are not classes
    (tmp_path / "scans" / "a").mkdir(parents=True)
    Image.new("L", (16, 16)).save(tmp_path / "scans" / "a" / "1.png")
    result = run_cli("data", "preview", "--dataset", "mri", "--data", tmp_path / "scans",
                     "--classes", "a", "--out", tmp_path / "p.png", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and len(error_lines(result)) == 1, result.stderr
    assert "'mri' has no labels" in result.stderr and not (tmp_path / "p.png").exists()
