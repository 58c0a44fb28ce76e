"""Hostile data thrown at the loaders: headers that declare more than a file holds (or than
the machine could), compressed payloads that inflate past what their header declares,
files that are not what their names say, meta.csv names that lead out of the dataset, s3
keys the cache cannot hold. Each must cost a sentence or a skipped file, never a traceback,
a hang or the memory the file asks for.

Every file is written into tmp_path by the test; the s3 cases use the in-repo S3 server.
"""

from __future__ import annotations

import gzip
import io
import os
import threading
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import nibabel
import numpy as np
import pytest
import tifffile
import torch
from loguru import logger
from numpy.lib import format as npformat
from PIL import Image, ImageFile

import gan.data.bps
import gan.data.mnist
import gan.data.mri  # noqa: F401  (imported before any memory is measured)
from gan.data import decode
from gan.data.bps import decode_tiff
from gan.data.nifti import axial_slices
from gan.data.s3 import MemoryFile, S3Settings, fetch
from gan.data.stream import Decoder, fetch_decoded
from gan.errors import GanError
from tests.s3_server import S3, make_bps_dataset, nucleus_image, tiff_bytes
from tests.test_data import HEAD_SLICES, SLICE_SIZE, head_volume, save_nifti, write_idx
from tests.test_s3 import coded, codes, load, png, pngs

pytest_plugins = ["tests.s3_server"]

MB = 1 << 20


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """A list that receives the peak of the memory Python and numpy allocate in the block."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


def sentence(message: str, *phrases: str) -> None:
    assert "\n" not in message and message.endswith(".") and len(message) < 400, message
    for phrase in phrases:
        assert phrase in message, (phrase, message)


@pytest.fixture
def skipped() -> Iterator[list[str]]:
    """The warnings loguru logs about skipped files or objects while the test runs."""
    messages: list[str] = []

    def keep(message) -> None:
        if message.record["message"].startswith("Skipped"):
            messages.append(message.record["message"])

    sink = logger.add(keep, level="WARNING")
    yield messages
    logger.remove(sink)


def gzip_with_zeros(path: Path, head: bytes, zeros: int) -> Path:
    """A gzip file of `head` and then `zeros` zero bytes (a bomb: ~1,000 to 1 compressed)."""
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(head)
        for _ in range(zeros // MB):
            f.write(bytes(MB))
    return path


def idx_head(magic: int, *dims: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


# ---- MNIST IDX ------------------------------------------------------------------------------


def test_gzip_idx_declaring_a_huge_payload_is_one_sentence_and_inflates_nothing(tmp_path):
    gzip_with_zeros(
        tmp_path / "train-images-idx3-ubyte.gz", idx_head(0x803, 10**8, 28, 28), 32 * MB
    )
    with peak_memory() as peak, pytest.raises(GanError) as info:
        load("mnist", tmp_path)
    sentence(str(info.value), "declares 100,000,000 images of 28x28", "replace it")
    assert peak[0] < 4 * MB  # the 32 MB of zeros were never inflated


@pytest.mark.parametrize("bomb", ["images", "labels"])
def test_gzip_bomb_under_a_small_idx_header_inflates_no_further_than_declared(tmp_path, bomb):
    if bomb == "images":
        gzip_with_zeros(
            tmp_path / "train-images-idx3-ubyte.gz", idx_head(0x803, 10, 28, 28), 64 * MB
        )
        phrase = "more pixel bytes than the 10 images of 28x28"
    else:
        write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((10, 28, 28), np.uint8))
        gzip_with_zeros(tmp_path / "train-labels-idx1-ubyte.gz", idx_head(0x801, 10), 64 * MB)
        phrase = "do not match the 10 images"
    with peak_memory() as peak, pytest.raises(GanError) as info:
        load("mnist", tmp_path)
    sentence(str(info.value), phrase)
    assert peak[0] < 4 * MB  # not the 64 MB the stream inflates to


@pytest.mark.parametrize("dims", [(10, 0, 28), (1, 100_000, 100_000)])
def test_idx_declaring_empty_or_giant_images_is_one_sentence(tmp_path, dims):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_head(0x803, *dims) + bytes(64))
    with pytest.raises(GanError) as info:
        load("mnist", tmp_path)
    sentence(str(info.value), "t10k-images-idx3-ubyte", "pixels", "replace it")


# ---- NIfTI ----------------------------------------------------------------------------------


def nifti_head(shape: tuple[int, ...], extension: bytes = b"") -> bytes:
    """A real NIfTI-1 header (uint8 voxels) declaring `shape`, with its extension bytes."""
    header = nibabel.Nifti1Header()
    header.set_data_dtype(np.uint8)
    header.set_data_shape(shape)
    header["vox_offset"] = 352 + len(extension)
    return header.binaryblock + (b"\x01\0\0\0" + extension if extension else bytes(4))


def test_nifti_declaring_an_enormous_volume_is_skipped_unread(tmp_path, skipped):
    save_nifti(tmp_path / "head.nii", head_volume())
    (tmp_path / "huge.nii").write_bytes(nifti_head((600, 600, 600)) + bytes(64))
    with peak_memory() as peak:
        data = load("mri", tmp_path, SLICE_SIZE)
    assert len(data.images) == len(HEAD_SLICES) and data.extra["skipped_files"] == 1
    [warning] = skipped
    assert "huge.nii" in warning and "216,000,000 voxels" in warning
    assert peak[0] < 32 * MB  # nothing near the 216 MB declared was allocated


def test_gzipped_nifti_in_memory_is_read_as_a_stream_not_inflated_whole():
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as f:
        f.write(nifti_head((600, 600, 600)))
        for _ in range(32):
            f.write(bytes(MB))
    volume = MemoryFile("s3://bucket/huge.nii.gz", raw.getvalue())  # as read with --no-cache
    with peak_memory() as peak, pytest.raises(ValueError, match="voxels"):
        axial_slices(volume, SLICE_SIZE)
    assert peak[0] < 4 * MB


def test_nifti_extension_declaring_more_than_the_header_holds_is_skipped_unread(tmp_path):
    extension = (256 * MB).to_bytes(4, "little") + (0).to_bytes(4, "little") + bytes(8)
    path = gzip_with_zeros(tmp_path / "ext.nii.gz", nifti_head((8, 8, 8), extension), 16 * MB)
    with peak_memory() as peak, pytest.raises(ValueError, match="extension declares"):
        axial_slices(path, SLICE_SIZE)
    assert peak[0] < 4 * MB  # nibabel would read the 256 MB the extension declares


def test_4d_nifti_reads_only_its_first_volume(tmp_path):
    volume = head_volume().astype(np.int16)
    save_nifti(tmp_path / "3d" / "head.nii.gz", volume)
    save_nifti(tmp_path / "4d" / "head.nii.gz", np.repeat(volume[..., None], 80, axis=-1))
    expected = load("mri", tmp_path / "3d", SLICE_SIZE).images
    with peak_memory() as peak:
        data = load("mri", tmp_path / "4d", SLICE_SIZE)
    assert torch.equal(data.images, expected)
    assert peak[0] < 8 * MB  # one volume (0.2 MB, 0.4 MB as float), not 80 of them


# ---- TIFF -----------------------------------------------------------------------------------


def bare_tiff(width: int, height: int, strip: bytes, compression: int = 1) -> bytes:
    """A little-endian 16-bit grayscale TIFF with one strip, its tags written by hand."""
    tags = [
        (256, 4, width), (257, 4, height), (258, 3, 16), (259, 3, compression),
        (262, 3, 1), (273, 4, 0), (277, 3, 1), (278, 4, height), (279, 4, len(strip)),
    ]  # fmt: skip
    offset = 8 + 2 + 12 * len(tags) + 4
    ifd = len(tags).to_bytes(2, "little")
    for tag, kind, value in tags:
        value = offset if tag == 273 else value
        ifd += tag.to_bytes(2, "little") + kind.to_bytes(2, "little") + (1).to_bytes(4, "little")
        ifd += value.to_bytes(2 if kind == 3 else 4, "little").ljust(4, b"\0")
    return b"II*\0" + (8).to_bytes(4, "little") + ifd + bytes(4) + strip


def test_multi_page_tiff_decodes_only_its_first_page(tmp_path):
    rng = np.random.default_rng(0)
    pages = np.stack([nucleus_image(rng, 40, 48) for _ in range(120)])
    tifffile.imwrite(tmp_path / "pages.tif", pages)
    tifffile.imwrite(tmp_path / "first.tif", pages[0])
    got = decode_tiff(tmp_path / "pages.tif", (16, 16), (0.5, 99.5))
    assert np.array_equal(got, decode_tiff(tmp_path / "first.tif", (16, 16), (0.5, 99.5)))


@pytest.mark.parametrize("case", ["huge page", "zlib bomb"])
def test_tiff_declaring_more_than_it_may_is_skipped_before_decoding(tmp_path, case):
    root = tmp_path / "bps"
    rows = make_bps_dataset(root, n=4)
    if case == "huge page":  # 12,000 x 8,000 pixels: over the limit, 192 MB of uint16
        hostile = bare_tiff(12_000, 8_000, bytes(16))
    else:  # 64 x 64 pixels declared, a strip that inflates to 64 MB
        hostile = bare_tiff(64, 64, zlib.compress(bytes(64 * MB), 9), compression=8)
    (root / rows[1]["filename"]).write_bytes(hostile)
    with peak_memory() as peak:
        data = load("bps", root, (16, 16))
    assert len(data.images) == 3 and data.extra["skipped_files"] == 1
    assert peak[0] < 8 * MB


# ---- images through PIL ---------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data).to_bytes(4, "big")
    return len(data).to_bytes(4, "big") + kind + data + crc


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR (valid CRC) declares width x height 8-bit gray pixels; one row of data."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    idat = zlib.compress(bytes(1 + width))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + (png_chunk(b"IEND", b""))
    )


def write_pngs(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in pngs(n).items():
        (folder / name).write_bytes(data)


def test_png_declaring_huge_dimensions_is_skipped_without_decoding(tmp_path, monkeypatch, skipped):
    write_pngs(tmp_path, 3)
    (tmp_path / "huge.png").write_bytes(png_declaring(30_000, 30_000))
    # Our limit must not rest on PIL's global one, which code often switches off.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    loaded: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def spy(self):
        loaded.append(self.size)
        if self.size == (30_000, 30_000):
            raise MemoryError("the test refuses to allocate 900 MB")
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    data = load("folder", tmp_path, (8, 8))
    assert codes(data.images) == [0, 1, 2] and data.extra["skipped_files"] == 1
    assert (30_000, 30_000) not in loaded
    [warning] = skipped
    assert "huge.png" in warning and "30000x30000" in warning


def other_format(fmt: str) -> bytes:
    buffer = io.BytesIO()
    mode = "1" if fmt == "XBM" else "L"
    Image.fromarray(coded(7, 16)).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


def test_files_named_as_images_but_in_other_formats_are_skipped(tmp_path, skipped):
    write_pngs(tmp_path, 3)
    for fmt in ("ICO", "PPM", "PCX", "XBM"):  # GIF is read: first frame
        (tmp_path / f"disguised-{fmt.lower()}.png").write_bytes(other_format(fmt))
    (tmp_path / "disguised.jpg").write_bytes(other_format("TGA"))
    data = load("folder", tmp_path, (8, 8))
    assert codes(data.images) == [0, 1, 2] and data.extra["skipped_files"] == 5
    [warning] = skipped
    assert "Skipped 5 unreadable file(s)" in warning


# ---- the decoded cache ----------------------------------------------------------------------


def npy(shape: tuple[int, ...], descr: str, body: bytes) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    npformat.write_array_header_1_0(buffer, header)  # the magic string, then the header
    return buffer.getvalue() + body


def planted_npz(images_shape: tuple[int, ...]) -> bytes:
    """A decoded-cache file whose images member declares `images_shape` and holds 64 bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("images.npy", npy(images_shape, "|u1", bytes(64)))
        archive.writestr("counts.npy", npy((1,), "<i8", (64).to_bytes(8, "little")))
        archive.writestr("failures.npy", npy((), "<U2", "[]".encode("utf-32-le")))
    return buffer.getvalue()


def test_a_planted_decoded_cache_declaring_a_huge_array_is_decoded_again(s3: S3):
    s3.bucket("planted")
    s3.put_many("planted", "mri", pngs(4))
    first = load("mri", "s3://planted/mri/", (8, 8))
    [cached] = (s3.cache_dir / ".decoded").glob("*.npz")
    cached.unlink()
    with peak_memory() as usual:  # decoded again from the cached objects, as below
        load("mri", "s3://planted/mri/", (8, 8))
    for shape in [(1 << 40,), (64, 1, 1024, 1024)]:  # 1 TiB; 64 MB
        cached.write_bytes(planted_npz(shape))
        with peak_memory() as peak:
            again = load("mri", "s3://planted/mri/", (8, 8))
        assert torch.equal(again.images, first.images)
        assert not again.extra.get("decoded_cached") and again.extra["s3_downloaded"] == 0
        assert peak[0] < usual[0] + 16 * MB  # np.load allocates what the header declares


# ---- meta.csv names -------------------------------------------------------------------------


def append_rows(root: Path, names: list[str]) -> None:
    with (root / "meta.csv").open("a") as meta:
        meta.writelines(f"{name},0.3,Fe,4\n" for name in names)


@contextmanager
def fifo(path: Path) -> Iterator[list[int]]:
    """A named pipe, and a writer that ends each read of it at once (no hang); the list it
    yields counts the times the pipe was opened for reading."""
    os.mkfifo(path)
    opened, done = [0], threading.Event()

    def writer() -> None:
        while not done.is_set():
            with open(path, "wb"):  # waits for a reader
                opened[0] += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        done.set()
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # releases the waiting writer
        thread.join(5)
        os.close(reader)


def test_meta_csv_names_outside_the_folder_or_not_regular_files_are_skipped(tmp_path, skipped):
    root = tmp_path / "bps"
    make_bps_dataset(root, n=6)
    nucleus = tiff_bytes(nucleus_image(np.random.default_rng(1), 40, 40))
    (tmp_path / "outside.tif").write_bytes(nucleus)
    (tmp_path / "elsewhere.tif").write_bytes(nucleus)
    (root / "link.tif").symlink_to(tmp_path / "elsewhere.tif")
    (root / "zero.tif").symlink_to("/dev/zero")
    (root / "folder.tif").mkdir()
    hostile = ["/etc/passwd", "../outside.tif", "link.tif", "zero.tif", "folder.tif", "fifo.tif"]
    append_rows(root, hostile)
    with fifo(root / "fifo.tif") as opened:
        data = load("bps", root, (16, 16))
        assert opened == [0]  # nothing opened the pipe
    assert len(data.images) == 6 and data.extra["skipped_files"] == len(hostile)
    [warning] = skipped
    assert f"Skipped {len(hostile)} unreadable file(s)" in warning


def test_meta_csv_names_that_leave_the_prefix_are_never_requested(s3: S3, skipped):
    s3.bucket("bps-data")
    uri = "s3://bps-data/Microscopy/train/"
    make_bps_dataset(uri, n=4, s3=s3)
    nucleus = tiff_bytes(nucleus_image(np.random.default_rng(1), 40, 40))
    s3.put("bps-data", "Microscopy/train/../secret.tif", nucleus)
    s3.put("bps-data", "secret.tif", nucleus)
    meta = s3.client.get_object(Bucket="bps-data", Key="Microscopy/train/meta.csv")["Body"].read()
    extra = "".join(f"{name},0.3,Fe,4\n" for name in ("../secret.tif", "/secret.tif"))
    s3.put("bps-data", "Microscopy/train/meta.csv", meta + extra.encode())
    data = load("bps", uri, (16, 16))
    assert len(data.images) == 4 and data.extra["skipped_files"] == 2
    assert not [key for key in s3.proxy.object_gets() if "secret" in key]


def test_a_named_pipe_among_folder_images_is_never_opened(tmp_path, skipped):
    write_pngs(tmp_path, 3)
    with fifo(tmp_path / "pipe.png") as opened:
        data = load("folder", tmp_path, (8, 8))
        assert opened == [0]  # nothing opened the pipe
    assert codes(data.images) == [0, 1, 2]
    [warning] = skipped
    assert "not regular files" in warning and "pipe.png" in warning


META = "filename,dose_Gy,particle_type,hr_post_exposure\n"
BAD_META = {
    "not UTF-8": (META + "a.tif,0.3,Fe,4\n").encode("utf-16"),
    "not CSV": (META + '"' + "x" * 200_000 + '",0.3,Fe,4\n').encode(),
    "overflowing value": (META + "a.tif,0.3,Fe,1e999\n").encode(),
    "too large": (META + "a.tif,0.3,Fe,4\n" * 10).encode(),
}


@pytest.mark.parametrize("case", list(BAD_META))
def test_a_meta_csv_that_cannot_be_read_is_one_sentence(tmp_path, monkeypatch, case):
    if case == "too large":
        monkeypatch.setattr(gan.data.bps, "MAX_TABLE_BYTES", 100)
    (tmp_path / "meta.csv").write_bytes(BAD_META[case])
    with pytest.raises(GanError) as info:
        load("bps", tmp_path, (16, 16))
    sentence(str(info.value), "meta.csv")


# ---- threads --------------------------------------------------------------------------------


def test_decode_all_uses_one_thread_per_usable_core(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    pools: list[int] = []

    class Recording(ThreadPoolExecutor):
        def __init__(self, max_workers=None, *args, **kwargs):
            pools.append(max_workers)
            super().__init__(max_workers, *args, **kwargs)

    monkeypatch.setattr(decode, "ThreadPoolExecutor", Recording)
    arrays, skipped = decode.decode_all(list(range(6)), lambda i: [np.zeros((1, 2, 2))], "x")
    assert (len(arrays), skipped, pools) == (6, 0, [3])


def test_streaming_decodes_no_more_objects_at_once_than_there_are_cores(s3: S3, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    s3.bucket("busy")
    s3.put_many("busy", "imgs", pngs(12))
    lock, running, most = threading.Lock(), [0], [0]

    def slow_decode(source) -> list[np.ndarray]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return [np.zeros((1, 4, 4), np.uint8)]

    settings = S3Settings(workers=8, use_cache=False)
    decoded = fetch_decoded("s3://busy/imgs/", (".png",), settings, Decoder(slow_decode, "t"))
    assert len(decoded.arrays) == 12 and not decoded.failures
    assert 1 <= most[0] <= 2  # 8 download workers, 2 cores


# ---- s3 keys the cache cannot hold ----------------------------------------------------------

LONG = "x" * 240 + ".png"  # a name of 244 bytes: its temporary name would pass NAME_MAX


@pytest.mark.parametrize("dataset", ["folder", "mri"])  # fetch, and fetch_decoded
def test_s3_keys_the_cache_cannot_hold_are_skipped_with_one_warning(s3: S3, skipped, dataset):
    s3.bucket("odd")
    files = {**pngs(4), LONG: png(coded(90)), "dir.png": png(coded(91))}
    s3.put_many("odd", "imgs", {**files, "dir.png/inner.png": png(coded(92))})
    data = load(dataset, "s3://odd/imgs/", (8, 8))
    assert sorted(codes(data.images)) == [0, 1, 2, 3, 92]
    [warning] = skipped
    assert "Skipped 2 object(s)" in warning


def test_a_key_whose_cache_path_would_pass_path_max_is_skipped(s3: S3, tmp_path, skipped):
    deep = tmp_path.joinpath(*["d" * 200] * 18)  # a cache folder of about 3,700 bytes
    far = "/".join(["p" * 150] * 3) + "/far.png"
    s3.bucket("deep")
    s3.put_many("deep", "imgs", {"near.png": png(coded(1)), far: png(coded(2))})
    fetched = fetch("s3://deep/imgs/", (".png",), S3Settings(cache_dir=deep))
    assert fetched.relative == ["near.png"]
    [warning] = skipped
    assert "Skipped 1 object(s)" in warning and "too long" in warning


@pytest.mark.parametrize("dataset", ["folder", "mri"])
def test_a_cache_left_in_the_way_of_some_objects_skips_only_those(s3: S3, skipped, dataset):
    s3.bucket("left")
    s3.put_many("left", "imgs", {**pngs(4), "sub/a.png": png(coded(50))})
    earlier = s3.cache_dir / "left" / "imgs"
    (earlier / "img-0001.png").mkdir(parents=True)  # a folder where a file goes
    (earlier / "sub").write_text("a file where a folder goes")
    data = load(dataset, "s3://left/imgs/", (8, 8))
    assert sorted(codes(data.images)) == [0, 2, 3]
    [warning] = skipped
    assert "Skipped 2" in warning and "cannot be cached" in warning
