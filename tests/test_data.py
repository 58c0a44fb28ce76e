"""The data layer on real files: MNIST IDX, image folders, MRI slices/NIfTI, DeviceBatches."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
from PIL import Image

from gan.config import DataConfig
from gan.data import load_dataset
from gan.errors import GanError
from gan.training.batches import DeviceBatches
from tests.conftest import SHARED_MRI, needs_shared

MNIST_GZ = "t10k-images-idx3-ubyte.gz"


# ---- helpers ---------------------------------------------------------------------------------


def write_idx(path: Path, images: np.ndarray) -> Path:
    """Write a uint8 N x H x W array as an IDX3 file (gzipped when the name ends in .gz)."""
    n, h, w = images.shape
    raw = (0x803).to_bytes(4, "big") + b"".join(v.to_bytes(4, "big") for v in (n, h, w))
    raw += images.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def save_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def gray(h: int, w: int, value: int = 0) -> np.ndarray:
    """A grayscale H x W uint8 image with a gradient (so it is not constant) plus `value`."""
    ramp = np.add.outer(np.arange(h), np.arange(w)) * 255 // max(1, h + w - 2)
    return np.clip(ramp + value, 0, 255).astype(np.uint8)


def load(name: str, source: Path | str | None = None, size=None):
    return load_dataset(
        DataConfig(name=name, source=None if source is None else str(source), image_size=size)
    )


# ---- MNIST -----------------------------------------------------------------------------------


@pytest.fixture
def mnist_raw(mnist_dir: Path) -> np.ndarray:
    """The bundled slice as N x H x W, decoded independently of gan."""
    raw = gzip.decompress((mnist_dir / MNIST_GZ).read_bytes())
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)


def test_mnist_bundled_slice_loads_as_uint8_n_1_28_28(mnist_dir, mnist_raw):
    data = load("mnist", mnist_dir)
    assert data.images.shape == (1000, 1, 28, 28)
    assert data.images.dtype == torch.uint8
    assert np.array_equal(data.images[:, 0].numpy(), mnist_raw)
    assert data.images.float().mean() > 20  # real digits, not zeros
    assert data.summary()["num_images"] == 1000
    assert data.summary()["image_shape"] == [1, 28, 28]


def test_mnist_uncompressed_copy(tmp_path, mnist_dir, mnist_raw):
    plain = tmp_path / "t10k-images-idx3-ubyte"
    plain.write_bytes(gzip.decompress((mnist_dir / MNIST_GZ).read_bytes()))
    data = load("mnist", tmp_path)
    assert data.images.shape == (1000, 1, 28, 28)
    assert np.array_equal(data.images[:, 0].numpy(), mnist_raw)
    assert data.source == str(plain)


@pytest.mark.parametrize("layout", [".", "raw", "MNIST/raw"])
def test_mnist_found_in_dir_raw_and_mnist_raw_layouts(tmp_path, mnist_dir, layout):
    target = tmp_path / layout
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(mnist_dir / MNIST_GZ, target / MNIST_GZ)
    data = load("mnist", tmp_path)
    assert data.images.shape == (1000, 1, 28, 28)
    assert Path(data.source) == target / MNIST_GZ


def test_mnist_test_split_used_with_a_warning_when_no_train_file(mnist_dir, warnings_logged):
    data = load("mnist", mnist_dir)
    assert data.extra["split"] == "test"
    assert any("training split not found" in m for m in warnings_logged), warnings_logged


def test_mnist_train_split_preferred_without_warning(tmp_path, mnist_dir, warnings_logged):
    shutil.copy(mnist_dir / MNIST_GZ, tmp_path / MNIST_GZ)
    train = np.full((7, 28, 28), 200, dtype=np.uint8)
    write_idx(tmp_path / "raw" / "train-images-idx3-ubyte.gz", train)
    data = load("mnist", tmp_path)
    assert data.extra["split"] == "train"
    assert data.images.shape == (7, 1, 28, 28)
    assert not warnings_logged


def test_mnist_full_train_split_holds_out_5000_deterministically(tmp_path):
    # 60,000 tiny 2x2 "images" whose four bytes spell their own index.
    index = np.arange(60_000, dtype=">u4")
    images = index.view(np.uint8).reshape(60_000, 2, 2)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    first = load("mnist", tmp_path, (2, 2))
    second = load("mnist", tmp_path, (2, 2))
    assert first.images.shape == (55_000, 1, 2, 2)
    assert first.extra == {"split": "train", "held_out_for_validation": 5000}
    kept = first.images.reshape(-1, 4).numpy().copy().view(">u4").ravel()
    assert len(np.unique(kept)) == 55_000
    assert np.all(np.diff(kept.astype(np.int64)) > 0)  # original order is kept
    assert torch.equal(first.images, second.images)


def test_mnist_truncated_idx_names_the_file(tmp_path, mnist_dir):
    raw = gzip.decompress((mnist_dir / MNIST_GZ).read_bytes())
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(GanError, match="truncated") as info:
        load("mnist", tmp_path)
    assert str(bad) in str(info.value)


def test_mnist_truncated_gzip_names_the_file(tmp_path, mnist_dir):
    data = (mnist_dir / MNIST_GZ).read_bytes()
    bad = tmp_path / MNIST_GZ
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(GanError) as info:
        load("mnist", tmp_path)
    assert str(bad) in str(info.value)


def test_mnist_wrong_magic_number_names_the_file(tmp_path, mnist_dir):
    raw = bytearray(gzip.decompress((mnist_dir / MNIST_GZ).read_bytes()))
    raw[:4] = (0x801).to_bytes(4, "big")  # the labels' magic number
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(bytes(raw))
    with pytest.raises(GanError, match="not an IDX image file") as info:
        load("mnist", tmp_path)
    assert str(bad) in str(info.value)


def test_mnist_folder_without_idx_files(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(GanError, match="No MNIST IDX files") as info:
        load("mnist", tmp_path)
    assert str(tmp_path) in str(info.value)


def test_mnist_image_size_resizes(mnist_dir, mnist_raw):
    data = load("mnist", mnist_dir, (32, 32))
    assert data.images.shape == (1000, 1, 32, 32)
    assert data.images.dtype == torch.uint8
    # Interpolation keeps the brightness of each digit (area grows by (32/28)^2).
    scale = (28 * 28) / (32 * 32)
    sums = data.images.double().sum(dim=(1, 2, 3)) * scale
    original = torch.from_numpy(mnist_raw.copy()).double().sum(dim=(1, 2))
    assert torch.allclose(sums, original, rtol=0.05)
    assert data.images.max() > 200
    wide = load("mnist", mnist_dir, (20, 36))
    assert wide.images.shape == (1000, 1, 20, 36)


# ---- folder ----------------------------------------------------------------------------------


def test_folder_recursive_and_hidden_files_skipped(tmp_path):
    save_png(tmp_path / "a.png", gray(16, 16))
    save_png(tmp_path / "sub" / "b.png", gray(16, 16, 10))
    save_png(tmp_path / "sub" / "deeper" / "c.jpg", gray(16, 16, 20))
    save_png(tmp_path / "sub" / "d.BMP", gray(16, 16, 30))
    save_png(tmp_path / ".hidden.png", gray(16, 16))
    save_png(tmp_path / ".cache" / "e.png", gray(16, 16))
    (tmp_path / "notes.txt").write_text("not an image")
    data = load("folder", tmp_path)
    assert data.images.shape == (4, 1, 16, 16)
    assert data.name == "folder"
    assert "skipped_files" not in data.extra


def test_folder_grayscale_gives_one_channel(tmp_path):
    for i in range(3):
        save_png(tmp_path / f"{i}.png", gray(12, 10, 40 * i))
    data = load("folder", tmp_path)
    assert data.images.shape == (3, 1, 12, 10)
    assert np.array_equal(data.images[0, 0].numpy(), gray(12, 10))


def test_folder_any_colour_image_gives_three_channels(tmp_path):
    save_png(tmp_path / "g.png", gray(12, 10))
    rgb = np.zeros((12, 10, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 2] = 250, 30
    save_png(tmp_path / "rgb.png", rgb)
    data = load("folder", tmp_path)
    assert data.images.shape == (2, 3, 12, 10)
    colour = data.images[1]
    assert colour[0].eq(250).all() and colour[1].eq(0).all() and colour[2].eq(30).all()
    grey = data.images[0]  # grayscale images are replicated into R, G and B
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_folder_mixed_sizes_resized_to_the_most_common(tmp_path):
    for i in range(3):
        save_png(tmp_path / f"common{i}.png", gray(20, 30, i))
    save_png(tmp_path / "odd1.png", gray(10, 10))
    save_png(tmp_path / "odd2.png", gray(64, 48))
    data = load("folder", tmp_path)
    assert data.images.shape == (5, 1, 20, 30)


def test_folder_explicit_image_size_is_respected(tmp_path):
    save_png(tmp_path / "a.png", gray(20, 30))
    save_png(tmp_path / "b.png", gray(10, 10))
    data = load("folder", tmp_path, (16, 24))
    assert data.images.shape == (2, 1, 16, 24)


def test_folder_16_bit_png_uses_the_full_8_bit_range(tmp_path):
    deep = np.linspace(1000, 3000, 20 * 30).reshape(20, 30).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode.startswith("I")  # really a 16-bit image
    data = load("folder", tmp_path)
    assert data.images.shape == (1, 1, 20, 30)
    pixels = data.images[0, 0]
    assert pixels.min() == 0 and pixels.max() == 255
    flat = pixels.flatten().int()
    assert torch.all(flat[1:] >= flat[:-1])  # the ramp stays a monotone ramp


def test_folder_unreadable_files_are_skipped_and_counted(tmp_path, warnings_logged):
    for i in range(3):
        save_png(tmp_path / f"good{i}.png", gray(16, 16, i))
    good = (tmp_path / "good0.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "garbage.png").write_bytes(b"definitely not a PNG file" * 10)
    data = load("folder", tmp_path)
    assert data.images.shape == (3, 1, 16, 16)
    assert data.extra["skipped_files"] == 3
    assert data.summary()["skipped_files"] == 3
    assert any("Skipped 3 unreadable" in m for m in warnings_logged), warnings_logged


def test_folder_without_images_names_the_path(tmp_path):
    (tmp_path / "a.txt").write_text("text")
    with pytest.raises(GanError, match="No image files") as info:
        load("folder", tmp_path)
    assert str(tmp_path) in str(info.value)


def test_folder_with_only_corrupt_images_names_the_path(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(GanError, match="No readable images") as info:
        load("folder", tmp_path)
    assert str(tmp_path) in str(info.value)


def test_folder_path_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(GanError, match="does not exist") as info:
        load("folder", missing)
    assert str(missing) in str(info.value)


def test_folder_needs_data(tmp_path):
    with pytest.raises(GanError, match="--data"):
        load("folder")


# ---- MRI -------------------------------------------------------------------------------------

# A synthetic head in RAS voxel order: x (towards Right) 48, y (towards Anterior) 64,
# z (towards Superior) 32. An elliptic head spans z 8..23 and y 8..51; a "nose" sticks out
# anteriorly (y 52..59) in the middle columns. Brightness grows with z, so slice order shows.
SHAPE = (48, 64, 32)
HEAD_SLICES = range(8, 24)
SLICE_SIZE = (64, 48)  # (H, W) = (y, x): no resizing


def head_volume() -> np.ndarray:
    x, y, z = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    inside = ((x - 23.5) / 18) ** 2 + ((y - 30) / 21.5) ** 2 <= 1
    inside |= (abs(x - 23.5) < 3) & (y >= 52) & (y < 60)
    inside &= (z >= HEAD_SLICES.start) & (z < HEAD_SLICES.stop)
    return np.where(inside, 400.0 + 40.0 * z + 2.0 * y, 0.0).astype(np.float32)


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path


def test_mri_default_is_the_bundled_sample():
    data = load("mri")
    assert data.images.shape == (142, 1, 200, 160)
    assert data.images.dtype == torch.uint8
    assert data.extra["files"] == 142
    assert "bundled sample" in data.source
    assert data.images.float().mean() > 10


def test_mri_nifti_gives_only_slices_with_tissue(tmp_path):
    save_nifti(tmp_path / "head.nii.gz", head_volume())
    data = load("mri", tmp_path, SLICE_SIZE)
    assert data.images.shape == (len(HEAD_SLICES), 1, *SLICE_SIZE)
    assert data.images.dtype == torch.uint8
    assert all(s.max() > 0 for s in data.images)
    # Inferior to superior, as the brightness ramp along z shows.
    means = data.images.float().mean(dim=(1, 2, 3))
    assert torch.all(means[1:] > means[:-1])


def test_mri_nifti_default_size_is_200x160(tmp_path):
    save_nifti(tmp_path / "head.nii.gz", head_volume())
    data = load("mri", tmp_path)
    assert data.images.shape == (len(HEAD_SLICES), 1, 200, 160)


def test_mri_nifti_anterior_is_at_the_top(tmp_path):
    save_nifti(tmp_path / "head.nii.gz", head_volume())
    image = load("mri", tmp_path, SLICE_SIZE).images[0, 0].numpy()
    # Rows run from y = 63 (anterior) down to y = 0; the nose (y 52..59) is rows 4..11.
    assert (image[5:11, 22:26] > 0).all(), "the nose should be near the top"
    assert (image[5:11, :10] == 0).all() and (image[5:11, -10:] == 0).all()
    assert (image[:4] == 0).all()  # y 60..63: in front of the nose
    assert (image[56:] == 0).all()  # y 0..7: behind the head
    assert (image[30, 10:38] > 0).all()  # the middle of the head


def test_mri_nifti_orientation_follows_the_affine(tmp_path):
    volume = head_volume()
    save_nifti(tmp_path / "ras" / "head.nii.gz", volume)
    # The same head stored left-posterior-superior: voxel axes 0 and 1 flipped in the data
    # and in the affine, so the world coordinates of every voxel are unchanged.
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    lps[:3, 3] = (SHAPE[0] - 1, SHAPE[1] - 1, 0)
    save_nifti(tmp_path / "lps" / "head.nii.gz", volume[::-1, ::-1].copy(), lps)
    ras = load("mri", tmp_path / "ras", SLICE_SIZE).images
    flipped = load("mri", tmp_path / "lps", SLICE_SIZE).images
    assert torch.equal(ras, flipped)


def test_mri_nifti_intensities_normalised_to_0_255(tmp_path):
    volume = head_volume()
    save_nifti(tmp_path / "a" / "head.nii.gz", volume)
    save_nifti(tmp_path / "b" / "head.nii.gz", volume * 37.5 + 0.0)  # another scanner scale
    a = load("mri", tmp_path / "a", SLICE_SIZE).images
    b = load("mri", tmp_path / "b", SLICE_SIZE).images
    assert a.min() == 0 and a.max() == 255
    assert (a.int() - b.int()).abs().max() <= 1  # per-volume normalisation ignores the scale
    # Brighter voxels stay brighter: the top head slice is brighter than the bottom one.
    assert a[-1].float().mean() > a[0].float().mean()


def test_mri_nifti_4d_uses_the_first_volume(tmp_path):
    volume = head_volume()
    save_nifti(tmp_path / "3d" / "head.nii.gz", volume)
    save_nifti(tmp_path / "4d" / "head.nii.gz", np.stack([volume, volume[::-1]], axis=-1))
    assert torch.equal(
        load("mri", tmp_path / "3d", SLICE_SIZE).images,
        load("mri", tmp_path / "4d", SLICE_SIZE).images,
    )


def test_mri_folder_mixing_png_slices_and_a_nifti_volume(tmp_path):
    for i in range(3):
        save_png(tmp_path / "slices" / f"s{i}.png", gray(64, 48, 30 * i))
    save_nifti(tmp_path / "volumes" / "head.nii", head_volume())
    data = load("mri", tmp_path, SLICE_SIZE)
    assert data.images.shape == (3 + len(HEAD_SLICES), 1, *SLICE_SIZE)
    assert data.extra["files"] == 4
    assert "skipped_files" not in data.extra


def test_mri_truncated_nifti_is_skipped_and_the_rest_kept(tmp_path, warnings_logged):
    good = save_nifti(tmp_path / "good.nii.gz", head_volume())
    raw = good.read_bytes()
    (tmp_path / "truncated.nii.gz").write_bytes(raw[: len(raw) // 2])
    save_png(tmp_path / "slice.png", gray(64, 48))
    data = load("mri", tmp_path, SLICE_SIZE)
    assert data.images.shape == (1 + len(HEAD_SLICES), 1, *SLICE_SIZE)
    assert data.extra == {"files": 2, "skipped_files": 1}
    assert any("truncated.nii.gz" in m for m in warnings_logged), warnings_logged


def test_mri_path_without_slices_or_volumes(tmp_path):
    (tmp_path / "notes.txt").write_text("no images")
    with pytest.raises(GanError, match="No MRI slices or volumes") as info:
        load("mri", tmp_path)
    assert str(tmp_path) in str(info.value)


def test_mri_missing_path(tmp_path):
    with pytest.raises(GanError, match="does not exist"):
        load("mri", tmp_path / "nope")


@needs_shared
def test_mri_real_mni_volume():
    data = load("mri", SHARED_MRI)
    assert 130 <= data.images.shape[0] <= 150
    assert data.images.shape[1:] == (1, 200, 160)
    assert data.images.max() == 255
    assert data.extra == {"files": 1}


# ---- DeviceBatches ---------------------------------------------------------------------------


def numbered(n: int) -> torch.Tensor:
    """n 1x2x2 images whose first pixel is their index (n <= 256)."""
    images = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    images[:, 0, 1, 1] = 255
    return images


def ids(batch: torch.Tensor) -> list[int]:
    return ((batch[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()


def stream(n=50, batch=8, seed=0) -> DeviceBatches:
    return DeviceBatches(numbered(n), torch.device("cpu"), batch, seed)


def test_batches_are_float32_in_minus_one_to_one():
    batches = stream()
    batch = batches.next()
    assert batch.dtype == torch.float32
    assert batch.shape == (8, 1, 2, 2)
    assert batch.min() >= -1 and batch.max() <= 1
    assert torch.all(batch[:, 0, 1, 1] == 1.0)  # 255 -> 1
    assert torch.all(batch[:, 0, 0, 1] == -1.0)  # 0 -> -1


def test_one_epoch_visits_every_image_exactly_once():
    batches = stream(n=50, batch=10)
    seen = [i for _ in range(5) for i in ids(batches.next())]
    assert sorted(seen) == list(range(50))
    assert batches.epoch == 1
    assert seen != list(range(50))  # shuffled


def test_epoch_boundary_inside_a_batch_still_visits_every_image_once():
    batches = stream(n=50, batch=8)
    seen = [i for _ in range(25) for i in ids(batches.next())]  # 200 images: 4 epochs
    for epoch in range(4):
        assert sorted(seen[epoch * 50 : (epoch + 1) * 50]) == list(range(50))
    assert seen[:50] != seen[50:100]  # each epoch has its own order


def test_same_seed_same_order_other_seed_other_order():
    def order(seed):
        batches = stream(seed=seed)
        return [i for _ in range(12) for i in ids(batches.next())]

    assert order(0) == order(0)
    assert order(3) == order(3)
    assert order(0) != order(3)


def test_batch_larger_than_the_dataset():
    batches = stream(n=10, batch=25)
    batch = batches.next()
    assert batch.shape == (25, 1, 2, 2)
    seen = ids(batch)
    assert sorted(seen[:10]) == list(range(10))
    assert sorted(seen[10:20]) == list(range(10))
    assert len(set(seen[20:])) == 5
    assert batches.position == 25 and batches.epoch == 2


def test_position_resumes_exactly():
    reference = stream(n=50, batch=8, seed=7)
    for _ in range(9):  # 72 images: into the second epoch, mid-batch boundary included
        reference.next()
    saved = reference.position
    expected = [reference.next() for _ in range(10)]

    resumed = stream(n=50, batch=8, seed=7)
    resumed.position = saved
    for want in expected:
        assert torch.equal(resumed.next(), want)


def test_rejects_non_uint8_images():
    with pytest.raises(TypeError):
        DeviceBatches(torch.zeros(4, 1, 2, 2), torch.device("cpu"), 2, 0)
