"""DICOM input for `mri` and `folder`, on the real DICOM files that pydicom's wheel ships
(pydicom is MIT licensed; `get_testdata_file` is only ever asked for files in the wheel, so
nothing is downloaded): little- and big-endian, RLE, JPEG 2000 and JPEG-LS slices, a
multi-frame object, and objects without an image (an RT plan, a structured report, DICOMDIR).
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian

from gan.config import DataConfig
from gan.data import load_dataset
from gan.data.decode import find_files
from gan.data.dicom import DicomReader, dicom_info, is_dicom
from gan.data.s3_cache import NO_SUFFIX, has_suffix
from tests.conftest import error_lines, run_cli
from tests.s3_server import S3, write_files

pytest_plugins = ["tests.s3_server"]

TEST_FILES = Path(get_testdata_file("MR_small.dcm")).parent
SLICES = {  # name in the folder: pydicom's file (one slice each)
    "mr/le.dcm": "MR_small.dcm",  # Explicit VR Little Endian
    "mr/be.dcm": "MR_small_bigendian.dcm",  # Explicit VR Big Endian
    "mr/rle.dcm": "MR_small_RLE.dcm",  # RLE Lossless: pydicom's own decoder
    "mr/j2k.dcm": "MR_small_jp2klossless.dcm",  # JPEG 2000 Lossless: Pillow or openjpeg
    "mr/jls.dcm": "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS Lossless: pyjpegls (dev group)
    "ct/1.dcm": "CT_small.dcm",
    "ct/IM0001": "dicomdirtests/77654033/CR1/6154",  # no suffix: found by its DICM preamble
}
FRAMES = {"dose.dcm": "rtdose.dcm"}  # RT dose, 15 frames
NO_IMAGE = {
    "plan.dcm": "rtplan.dcm",
    "report.dcm": "test-SR.dcm",
    "DICOMDIR": "dicomdirtests/DICOMDIR",
}


def copy(folder: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TEST_FILES / source, folder / name)
    return folder


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    """A scanner-like folder: slices, a multi-frame object, non-image objects, a note, and a
    hidden DICOM file (left out, like every hidden file)."""
    root = copy(tmp_path / "scans", SLICES | FRAMES | NO_IMAGE | {".hidden": "MR_small.dcm"})
    (root / "README").write_text("exported by the scanner\n")
    return root


def read(name: str, size=None, window="percentile", folder: Path = TEST_FILES) -> list:
    return DicomReader(size, window)(folder / name)


def edited(tmp_path: Path, source: str, **values) -> Path:
    """A copy of one of pydicom's files with some elements changed, saved by pydicom."""
    ds = dcmread(TEST_FILES / source)
    for key, value in values.items():
        setattr(ds, key, value)
    path = tmp_path / f"edited-{source}"
    ds.save_as(path, enforce_file_format=True)
    return path


# ---- the decoder -----------------------------------------------------------------------------


def test_every_syntax_and_byte_order_gives_the_same_slice():
    """The same MR slice, stored five ways, decodes to the same pixels: the byte order is
    honoured and the compressed syntaxes are decoded losslessly."""
    le = read("MR_small.dcm")[0]
    assert le.shape == (1, 64, 64) and le.dtype == np.uint8 and le.max() == 255
    for name in ("MR_small_bigendian.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                 "MR_small_jpeg_ls_lossless.dcm"):  # fmt: skip
        assert np.array_equal(read(name)[0], le), name


def test_multi_frame_gives_one_slice_per_frame():
    frames = read("rtdose.dcm", (16, 16))
    assert len(frames) == 15 and all(f.shape == (1, 16, 16) for f in frames)
    assert np.array_equal(frames[0], read("rtdose_1frame.dcm", (16, 16))[0])
    assert len({f.tobytes() for f in frames}) > 1  # the frames, not one frame 15 times


def test_file_window_goes_through_the_rescale(tmp_path):
    """--dicom-window file: CT values become Hounsfield units (slope 1, intercept -1024) before
    the file's window (center 40, width 400: -160 to 239 HU) maps them to 0-255."""
    path = edited(tmp_path, "CT_small.dcm", WindowCenter=40, WindowWidth=400)
    hu = dcmread(path).pixel_array.astype(np.float64) - 1024
    expected = (np.clip((hu + 160) / 399, 0, 1) * 255).round().astype(np.uint8)
    assert np.array_equal(DicomReader(None, "file")(path)[0][0], expected)
    assert not np.array_equal(DicomReader(None, "percentile")(path)[0][0], expected)


def test_file_window_falls_back_to_percentiles_in_one_note(logged):
    reader = DicomReader(None, "file")
    assert np.array_equal(reader(TEST_FILES / "CT_small.dcm")[0], read("CT_small.dcm")[0])
    assert reader.finish({})["dicom"]["slices"] == 1
    assert len(logged) == 1
    assert "1 DICOM file(s) declare no usable window" in logged[0]


def test_monochrome1_is_inverted(tmp_path):
    path = edited(tmp_path, "MR_small.dcm", PhotometricInterpretation="MONOCHROME1")
    inverted, plain = DicomReader(None)(path)[0].astype(int), read("MR_small.dcm")[0].astype(int)
    assert np.abs(inverted + plain - 255).max() <= 1


@pytest.mark.parametrize(
    ("values", "phrase"),
    [({"Rows": 65535, "Columns": 65535}, "declares 65535x65535 pixels"),
     ({"NumberOfFrames": 100_000}, "yields 100,000 slices"),
     ({"SamplesPerPixel": 4}, "declares 4 samples")],
)  # fmt: skip
def test_declared_sizes_are_refused_before_the_pixels_are_read(tmp_path, values, phrase):
    with pytest.raises(ValueError, match=phrase):
        DicomReader((200, 160))(edited(tmp_path, "MR_small.dcm", **values))


def test_a_deflated_dataset_is_inflated_with_a_cap(tmp_path, monkeypatch):
    """32 MB of declared zeros deflate to 32 KB; pydicom would inflate them at once."""
    ds = dcmread(TEST_FILES / "MR_small.dcm")
    ds.Rows = ds.Columns = 4096
    ds.PixelData = bytes(2 * 4096 * 4096)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "bomb.dcm", enforce_file_format=True)
    assert (tmp_path / "bomb.dcm").stat().st_size < 100_000
    monkeypatch.setattr("gan.data.dicom.MAX_OBJECT_BYTES", 16 << 20)
    with pytest.raises(ValueError, match="inflates to more than 16,777,216 bytes"):
        read("bomb.dcm", folder=tmp_path)
    assert read("image_dfl.dcm", (8, 8))[0].shape == (1, 8, 8)  # a real deflated file


@pytest.mark.parametrize(
    ("name", "phrase"),
    [("rtplan.dcm", "holds no pixel data (RT Plan Storage)"),
     ("test-SR.dcm", "holds no pixel data (Comprehensive SR Storage)"),
     ("dicomdirtests/DICOMDIR", "holds no pixel data (Media Storage Directory Storage)"),
     ("no_meta.dcm", "not a DICOM file"),  # no preamble: refused, not forced
     ("JPGExtended.dcm", "try python-gdcm, or the GPL-3 pylibjpeg-libjpeg"),
     ("MR_truncated.dcm", "less than expected")],
)  # fmt: skip
def test_objects_without_a_decodable_image_say_why(name, phrase):
    with pytest.raises(ValueError, match=re.escape(phrase)):
        read(name)
    header_only = name in ("JPGExtended.dcm", "MR_truncated.dcm")  # their headers are fine
    assert (dicom_info(TEST_FILES / name) is None) != header_only


def test_files_are_found_by_suffix_or_preamble_and_hidden_ones_left_out(scans):
    found = {p.relative_to(scans).as_posix() for p in find_files(scans, (".dcm",), is_dicom)}
    assert found == set(SLICES | FRAMES | NO_IMAGE)  # not README, not .hidden
    assert not is_dicom(scans / "README") and dicom_info(scans / "ct/IM0001") == (True, (16, 16))


def test_s3_keys_without_a_suffix_are_listed():
    suffixes = (".dcm", NO_SUFFIX)
    for key in ("a/b.DCM", "a/IM0001", "a/1.2.840.113619.2.55", "I10"):
        assert has_suffix(key, suffixes), key
    for key in ("a/readme.txt", "a/.hidden", "a/x.json", "a/IM0001"[:0]):
        assert not has_suffix(key, suffixes), key
    assert not has_suffix("a/IM0001", (".dcm",))


# ---- the loaders and the CLI -----------------------------------------------------------------


def test_mri_trains_on_a_scanner_folder_skipping_the_objects_without_images(scans, tmp_path):
    tiny = ("--image-size", "32x32", "--max-steps", "2", "--batch-size", "4", "--model", "mlp")
    where = ("--device", "cpu", "--tracker", "none", "--run-name", "r", "--workdir", tmp_path)
    done = run_cli("train", "--dataset", "mri", "--data", scans, *tiny, *where, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stderr.splitlines() if "Skipped" in line]
    assert len(skipped) == 1 and "Skipped 3 unreadable file(s)" in skipped[0], done.stderr
    assert "DICOMDIR" in skipped[0] and "RT Plan Storage" in skipped[0]
    data = json.loads((tmp_path / "logs" / "r" / "run.json").read_text())["dataset"]
    assert data["num_images"] == len(SLICES) + 15 and data["files"] == len(SLICES) + 1
    assert data["dicom"]["modalities"] == {"RTDOSE": 15, "MR": 5, "CR": 1, "CT": 1}


def test_a_folder_with_no_decodable_image_is_one_sentence(tmp_path):
    folder = copy(tmp_path / "plans", NO_IMAGE)
    done = run_cli("data", "info", "--dataset", "mri", "--data", folder, cwd=tmp_path)
    assert done.returncode == 1 and len(error_lines(done)) == 1, done.stderr
    assert "No readable images were found" in error_lines(done)[0]


def test_data_info_counts_slices_by_modality_size_and_series(scans, tmp_path):
    done = run_cli("data", "info", "--dataset", "mri", "--data", scans, "--image-size",
                   "16x16", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [" ".join(line.split()) for line in done.stdout.splitlines()]
    assert "DICOM: 22 slices (one per frame)" in lines
    assert {"RTDOSE 15", "MR 5", "CT 1", "10x10 15", "64x64 5", "128x128 1"} <= set(lines)
    ct = dcmread(TEST_FILES / "CT_small.dcm").SeriesInstanceUID
    assert f"{ct} CT 1" in lines


def test_folder_mixes_dicom_slices_with_colour_images(tmp_path):
    folder = copy(tmp_path / "mixed", {"a/mr.dcm": "MR_small.dcm", "a/dose.dcm": "rtdose.dcm"})
    Image.new("RGB", (64, 64), (200, 30, 30)).save(folder / "b.png")
    data = load_dataset(DataConfig(name="folder", source=str(folder)))
    assert tuple(data.images.shape) == (17, 3, 64, 64)  # the most common size: 64x64
    mr = torch.from_numpy(read("MR_small.dcm")[0].copy())
    assert any(torch.equal(image, mr.expand(3, -1, -1)) for image in data.images)


def test_mri_from_s3_reads_dcm_and_suffixless_keys(s3: S3):
    files = {name: (TEST_FILES / source).read_bytes() for name, source in SLICES.items()}
    files |= {"mr/1.2.840.5": files["mr/le.dcm"], "notes.txt": b"text", "LICENSE": b"MIT"}
    local = write_files(s3.tmp / "local", {k: v for k, v in files.items() if k != "LICENSE"})
    s3.bucket("scans")
    s3.put_many("scans", "study", files)
    remote = load_dataset(DataConfig(name="mri", source="s3://scans/study/", image_size=(16, 16)))
    assert remote.extra["s3_objects"] == len(SLICES) + 2  # LICENSE: fetched, not DICOM
    assert remote.extra["skipped_files"] == 1 and "study/notes.txt" not in s3.proxy.object_gets()
    here = load_dataset(DataConfig(name="mri", source=str(local), image_size=(16, 16)))
    assert torch.equal(remote.images, here.images) and len(here.images) == len(SLICES) + 1


def test_dicom_files_named_as_images_are_read_as_dicom_without_pil_warnings(tmp_path):
    # CT_small.dcm's preamble is a TIFF header: PIL opens it, warns, and finds no image.
    folder = copy(tmp_path / "named", {"ct.tif": "CT_small.dcm", "mr.png": "MR_small.dcm"})
    with zipfile.ZipFile(tmp_path / "named.zip", "w") as zf:
        zf.write(folder / "ct.tif", "ct.tif")
    expected = read("CT_small.dcm", (16, 16))[0]
    with warnings.catch_warnings(record=True) as seen:
        for name, source, count in [("folder", folder, 2), ("mri", folder, 2),
                                    ("mri", tmp_path / "named.zip", 1)]:  # fmt: skip
            data = load_dataset(DataConfig(name=name, source=str(source), image_size=(16, 16)))
            assert len(data.images) == count and data.extra["dicom"]["slices"] == count
            assert np.array_equal(data.images[0, :1].numpy(), expected)
    assert not [w for w in seen if "PIL" in w.filename], [str(w.message) for w in seen]
