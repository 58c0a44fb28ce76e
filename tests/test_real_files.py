"""Real third-party files: the NIfTI volumes nibabel ships for its own tests, a photograph
matplotlib ships, and every PIL mode made from that photograph's pixels. Each ends in
images to train on or in one sentence."""

from __future__ import annotations

import gzip
import shutil
import warnings
from pathlib import Path

import matplotlib
import nibabel
import numpy as np
import pytest
import torch
from PIL import Image

from gan.config import DataConfig
from gan.data import load_dataset
from gan.errors import GanError
from tests.conftest import error_lines, run_cli

NIBABEL_DATA = Path(nibabel.__file__).parent / "tests" / "data"
PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
needs_nibabel_data = pytest.mark.skipif(
    not (NIBABEL_DATA / "example4d.nii.gz").is_file(),
    reason="this nibabel install ships no tests/data (a wheel without its test files)",
)
needs_photo = pytest.mark.skipif(
    not PHOTO.is_file(), reason="matplotlib's sample_data/grace_hopper.jpg is not installed"
)


def load(name: str, source: Path, size=None):
    return load_dataset(DataConfig(name=name, source=str(source), image_size=size))


def photo(width: int = 48, height: int = 64) -> Image.Image:
    return Image.open(PHOTO).convert("RGB").resize((width, height))


def every_mode(folder: Path) -> dict[str, Image.Image]:
    """The photograph in every mode a folder of images may hold; what each should read as."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = photo()
    clear = rgb.copy()
    clear.putalpha(Image.new("L", rgb.size, 0).resize(rgb.size))
    clear.paste(rgb.crop((0, 32, 48, 64)).convert("RGBA"), (0, 32))  # top half transparent
    wide = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
    rgb.save(folder / "rgb.png")
    rgb.convert("1").save(folder / "bilevel.png")
    rgb.convert("L").save(folder / "gray.png")
    rgb.convert("LA").save(folder / "gray-alpha.png")
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    clear.save(folder / "rgba.png")
    rgb.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    Image.fromarray(wide).save(folder / "sixteen.png")
    Image.fromarray(wide.astype(np.float32)).save(folder / "float.tif")
    rgb.convert("LAB").save(folder / "lab.tif")
    rgb.convert("YCbCr").save(folder / "ycbcr.tif")
    frames = [rgb, rgb.rotate(90), rgb.rotate(180)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    rgb.transpose(Image.Transpose.ROTATE_90).save(folder / "turned.jpg", exif=exif, quality=95)
    return {"rgb": rgb, "clear": clear}


@needs_photo
def test_every_mode_is_read_as_rgb_and_said_in_one_line(tmp_path, logged):
    made = every_mode(tmp_path)
    data = load("folder", tmp_path)
    assert data.images.shape == (13, 3, 64, 48)  # the EXIF-turned JPEG upright, not 48x64
    [said] = [m for m in logged if m.startswith("Converted")]
    assert said.startswith("Converted 11 of 13 images to RGB (")  # all but rgb.png, turned.jpg
    for part in (
        "RGBA on white",
        "grayscale with alpha on white",
        "CMYK",
        "1-bit",
        "16-bit",
        "float",
        "LAB",
        "YCbCr",
        "palette",
        "1 animated: first frame used",
        "1 turned upright by their EXIF orientation",
    ):
        assert part in said, said
    by_name = dict(zip(sorted(p.name for p in tmp_path.iterdir()), data.images, strict=True))
    rgb = np.asarray(made["rgb"]).transpose(2, 0, 1).astype(int)
    for name in ("rgb.png", "cmyk.jpg", "lab.tif", "ycbcr.tif", "turned.jpg", "animated.gif"):
        error = np.abs(by_name[name].numpy().astype(int) - rgb).mean()
        assert error < 12, (name, error)  # the first frame of the GIF: its 256 colours
    clear = by_name["rgba.png"].numpy()
    assert (clear[:, :32] == 255).all()  # transparent: white
    assert (clear[:, 32:] == rgb[:, 32:]).all()  # opaque: as it was


@needs_photo
def test_gray_modes_make_a_grayscale_dataset(tmp_path):
    gray = photo().convert("L")
    gray.convert("1").save(tmp_path / "bilevel.png")
    gray.save(tmp_path / "gray.png")
    gray.convert("P").save(tmp_path / "gray-palette.gif")  # a GIF of grays: P mode
    Image.fromarray(np.asarray(gray, dtype=np.uint16) * 64).save(tmp_path / "sixteen.png")
    data = load("folder", tmp_path)
    assert data.images.shape == (4, 1, 64, 48)
    palette, sixteen = data.images[1, 0].int(), data.images[3, 0].int()
    expected = np.asarray(gray).astype(int)
    assert (palette.numpy() == expected).all()
    # 16-bit: scaled from its own lowest to highest value.
    span = expected.max() - expected.min()
    assert np.abs(sixteen.numpy() - (expected - expected.min()) * 255 / span).max() <= 1


@needs_photo
def test_tiny_images_train_at_their_size_or_one_sentence_says_what_fits(tmp_path):
    for i in range(4):
        photo().crop((8 * i, 8 * i, 8 * i + 24, 8 * i + 24)).resize((8, 8)).save(
            tmp_path / f"tiny{i}.png"
        )
    common = ("--dataset", "folder", "--data", tmp_path, "--workdir", tmp_path / "work")
    refused = run_cli("train", *common, "--model", "fastgan", "--max-steps", "1", cwd=tmp_path)
    assert refused.returncode == 1
    assert error_lines(refused) == [
        f"Error: The images of {tmp_path} are 8x8 (their own size: no --image-size was "
        "given), which model 'fastgan' cannot take; train them at that size with --model "
        "dcgan, dcgan-proj or mlp, or resize them with --image-size 32x32 (enlarging adds "
        "no detail)."
    ]
    trained = run_cli("train", *common, "--max-steps", "1", "--batch-size", "4", cwd=tmp_path)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "Data: 4 images of 3x8x8" in trained.stderr


# ---- NIfTI: nibabel's own test files ----------------------------------------------------------


@needs_nibabel_data
def test_nibabel_volumes_give_slices_and_say_what_was_done(tmp_path, logged):
    names = ("example4d.nii.gz", "example_nifti2.nii.gz", "anatomical.nii", "functional.nii")
    for name in names:
        shutil.copy(NIBABEL_DATA / name, tmp_path / name)
    data = load("mri", tmp_path, (40, 32))
    # Files in name order: anatomical 25 slices, example4d 24 (first volume of 2),
    # example_nifti2 12 (NIfTI-2, first of 2), functional 3 (first of 20).
    assert data.images.shape == (25 + 24 + 12 + 3, 1, 40, 32) and data.extra == {"files": 4}
    said = [m for m in logged if "4-D series" in m]
    assert said == [
        "3 4-D series: first volume used; 2 volume(s) kept to their proportions in mm, "
        "with black borders."
    ]
    # example4d: 128x96 voxels of 2x2 mm, 256 mm wide and 192 mm high: fitted into 32
    # columns it is 24 rows high, in the middle of 40.
    slab = data.images[25 + 12, 0]
    assert (slab[:8] == 0).all() and (slab[-8:] == 0).all() and slab[8:32].max() > 0


@needs_nibabel_data
def test_a_real_volume_stored_in_another_orientation_gives_the_same_slices(tmp_path):
    image = nibabel.load(NIBABEL_DATA / "anatomical.nii")  # stored left-anterior-superior
    data = np.asarray(image.dataobj)
    flipped = image.affine @ np.diag([-1.0, -1.0, -1.0, 1.0])  # the axes reversed ...
    flipped[:3, 3] = image.affine[:3, :3] @ (np.array(data.shape) - 1) + image.affine[:3, 3]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(NIBABEL_DATA / "anatomical.nii", tmp_path / "a")
    nibabel.save(nibabel.Nifti1Image(data[::-1, ::-1, ::-1].copy(), flipped), tmp_path / "b/x.nii")
    a, b = (
        load("mri", tmp_path / "a", (40, 32)).images,
        load("mri", tmp_path / "b", (40, 32)).images,
    )
    assert len(a) == 25 and (a == b).all()  # ... and the world coordinates kept


@needs_nibabel_data
@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("row_major.dconn.nii", "it holds a CIFTI-2 matrix of shape 1x1x1x1x10x10"),
        ("blank.nii.gz", "no axial slice holds tissue"),
    ],
)
def test_files_with_no_image_are_one_sentence(tmp_path, name, says):
    if name == "blank.nii.gz":  # a real header, its voxels all one value
        image = nibabel.load(NIBABEL_DATA / "anatomical.nii")
        nibabel.save(
            nibabel.Nifti1Image(np.full(image.shape, 7, np.int16), image.affine), tmp_path / name
        )
    else:
        shutil.copy(NIBABEL_DATA / name, tmp_path / name)
    with pytest.raises(GanError) as info:
        load("mri", tmp_path / name)
    message = str(info.value)
    assert message.startswith(f"No readable images were found in {tmp_path / name}: 1 file")
    assert says in message and message.count(". ") == 0 and message.endswith(".")


@needs_nibabel_data
def test_a_mask_volume_is_read(tmp_path):
    """nibabel's standard.nii.gz: 4x5x7 voxels of 0 or 255 (one value inside), 1x3x2 mm."""
    data = load("mri", NIBABEL_DATA / "standard.nii.gz", (40, 32))
    assert len(data.images) > 0 and data.images.max() == 255


@needs_nibabel_data
def test_volumes_given_to_the_folder_dataset_point_at_mri(tmp_path):
    shutil.copy(NIBABEL_DATA / "example4d.nii.gz", tmp_path)
    shutil.copy(NIBABEL_DATA / "test.mgz", tmp_path)  # read by neither
    with pytest.raises(GanError) as info:
        load("folder", tmp_path)
    assert str(info.value) == (
        f"{tmp_path} holds no image files but 1 NIfTI volume(s); train on their slices "
        "with --dataset mri."
    )


@needs_photo
@pytest.mark.parametrize("name", ["folder", "mri"])
def test_a_symlink_loop_beside_images_is_skipped_with_them_not_a_traceback(tmp_path, name):
    photo().save(tmp_path / "real.png")
    (tmp_path / "loop_a.png").symlink_to("loop_b.png")
    (tmp_path / "loop_b.png").symlink_to("loop_a.png")
    (tmp_path / "loop").symlink_to("loop")  # no suffix: looked at by its bytes (DICOM?)
    data = load(name, tmp_path, (16, 16))
    assert len(data.images) == 1 and data.extra["skipped_files"] == 2


@needs_photo
def test_photos_with_a_corrupt_exif_block_are_read_without_a_warning_each(tmp_path):
    for name in ("a.jpg", "b.jpg"):  # EXIF that declares 5 tags and holds none
        photo().save(tmp_path / name, exif=b"Exif\0\0II*\0\x08\0\0\0\x05\0\x12\x01")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        data = load("folder", tmp_path)
    assert tuple(data.images.shape) == (2, 3, 64, 48)
    assert not [w for w in seen if "PIL" in w.filename], [str(w.message) for w in seen]


@needs_nibabel_data
def test_volumes_whose_name_says_gzip_wrongly_are_read_by_their_bytes(tmp_path):
    named = tmp_path / "named"
    named.mkdir()
    shutil.copy(NIBABEL_DATA / "example4d.nii.gz", named / "a.nii.gz")
    shutil.copy(NIBABEL_DATA / "functional.nii", named / "b.nii")
    misnamed = tmp_path / "misnamed"
    misnamed.mkdir()  # inflated by a browser but still .nii.gz; gzipped but named .nii
    (misnamed / "a.nii.gz").write_bytes(gzip.decompress((named / "a.nii.gz").read_bytes()))
    (misnamed / "b.nii").write_bytes(gzip.compress((named / "b.nii").read_bytes()))
    expected = load("mri", named, (40, 32)).images
    assert torch.equal(load("mri", misnamed, (40, 32)).images, expected) and len(expected) == 27
