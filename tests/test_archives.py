"""Datasets read in place from archives: a ZIP as StyleGAN2-ADA's dataset_tool.py writes it
(labels in dataset.json) and WebDataset-style tar shards (labels in .cls members), trained
conditionally from a read-only folder; hostile members (names that climb out, links,
devices, members that declare or inflate to more than they may) are skipped or cost one
sentence. Every archive is built by the test from real MNIST digits."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import stat
import struct
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from loguru import logger
from PIL import Image

from gan.config import DataConfig
from gan.data import ImageData, load_dataset
from gan.data.archive import MAX_EXTENDED_BYTES
from gan.errors import GanError
from tests.conftest import MNIST_1K, SHARED_MRI, error_lines, run_cli

MB = 1 << 20
TINY = (
    "--device",
    "cpu",
    "--model",
    "mlp",
    "--batch-size",
    "8",
    "--max-steps",
    "2",
    "--sample-every",
    "1000",
)


def mnist(n: int) -> tuple[np.ndarray, list[int]]:
    """The first n digits of the bundled MNIST slice and their labels."""
    images = gzip.decompress((MNIST_1K / "t10k-images-idx3-ubyte.gz").read_bytes())[16:]
    labels = gzip.decompress((MNIST_1K / "t10k-labels-idx1-ubyte.gz").read_bytes())[8:]
    return np.frombuffer(images, np.uint8).reshape(-1, 28, 28)[:n], list(labels[:n])


def png(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="png", **options)
    return buffer.getvalue()


def stylegan_zip(path: Path, images: np.ndarray, labels: list[int] | None) -> Path:
    """As NVlabs/stylegan2-ada-pytorch's dataset_tool.py writes --dest x.zip: stored members
    00000/img00000000.png (uncompressed PNGs), then dataset.json ({"labels": null} when
    the images have none)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        names = []
        for index, pixels in enumerate(images):
            text = f"{index:08d}"
            names.append(f"{text[:5]}/img{text}.png")
            zf.writestr(names[-1], png(pixels, compress_level=0, optimize=False))
        listed = (
            None if labels is None else [[n, int(c)] for n, c in zip(names, labels, strict=True)]
        )
        zf.writestr("dataset.json", json.dumps({"labels": listed}))
    return path


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE,
        link: str = "") -> None:  # fmt: skip
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data)
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def shards(folder: Path, images: np.ndarray, labels: list[int], per_shard: int) -> Path:
    """WebDataset's layout: shard-000000.tar, ... each holding 000000.png beside 000000.cls."""
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(images), per_shard):
        with tarfile.open(folder / f"shard-{start // per_shard:06d}.tar", "w") as tar:
            for index in range(start, min(start + per_shard, len(images))):
                add(tar, f"{index:06d}.png", png(images[index]))
                add(tar, f"{index:06d}.cls", str(labels[index]).encode())
    return folder


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}  # fmt: skip


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A data folder made read-only once the test has written its archives into it."""
    folder = tmp_path / "data"
    folder.mkdir()
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)


def freeze(folder: Path) -> dict[str, tuple[int, int]]:
    for path in [*folder.rglob("*"), folder]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return listing(folder)


@pytest.fixture
def warned() -> Iterator[list[str]]:
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    with contextlib.suppress(ValueError):  # the CLI sets its own sinks up
        logger.remove(sink)


def load(source: Path | str, **options) -> ImageData:
    return load_dataset(DataConfig(name="folder", source=str(source), **options))


# ---- the two layouts, trained in place ------------------------------------------------------


def test_stylegan2_ada_zip_trains_conditionally_from_a_read_only_folder(read_only, tmp_path):
    images, labels = mnist(48)
    stylegan_zip(read_only / "mnist.zip", images, labels)
    before = freeze(read_only)
    done = run_cli("train", "--dataset", "folder", "--data", read_only / "mnist.zip",
                   "--conditional", *TINY, "--workdir", tmp_path / "w", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert listing(read_only) == before  # nothing extracted or cached beside the data
    run = json.loads(next((tmp_path / "w" / "logs").glob("*/run.json")).read_text())
    counts = {str(c): labels.count(c) for c in sorted(set(labels))}
    assert run["dataset"]["classes"] == counts and run["dataset"]["archives"] == 1

    data = load(read_only / "mnist.zip")  # each image keeps its own label, in member order
    assert np.array_equal(data.images[:, 0].numpy(), images)
    assert [int(data.classes[i]) for i in data.labels] == labels


def test_webdataset_shards_train_conditionally_by_pattern_or_folder(read_only, tmp_path):
    images, labels = mnist(40)
    shards(read_only / "shards", images, labels, per_shard=16)  # 3 shards, the last short
    (read_only / "shards" / "README.txt").write_text("not an archive")
    before = freeze(read_only)
    pattern = str(read_only / "shards" / "shard-*.tar")  # quoted: gan expands it
    done = run_cli("train", "--dataset", "folder", "--data", pattern, "--conditional", *TINY,
                   "--workdir", tmp_path / "w", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert listing(read_only) == before
    for source in (pattern, read_only / "shards"):
        data = load(source)
        assert np.array_equal(data.images[:, 0].numpy(), images)
        assert [int(data.classes[i]) for i in data.labels] == labels
        assert data.summary()["archives"] == 3
    limited = load(read_only / "shards", limit=5)  # --limit: the first in name order
    assert np.array_equal(limited.images[:, 0].numpy(), images[:5])


def test_classes_are_the_label_integers_sorted_by_value(tmp_path):
    images, _ = mnist(6)
    data = load(stylegan_zip(tmp_path / "a.zip", images, [10, 2, 2, 10, 33, 2]))
    assert data.classes == ("2", "10", "33")
    assert data.labels.tolist() == [1, 0, 0, 1, 2, 0]


def test_classes_choose_members_by_the_archives_labels_before_limit(tmp_path):
    images, _ = mnist(6)
    zipped = stylegan_zip(tmp_path / "a.zip", images, [10, 2, 2, 10, 33, 2])
    data = load(zipped, classes=("10", "33"))
    assert data.classes == ("10", "33") and data.labels.tolist() == [0, 0, 1]
    assert np.array_equal(data.images[:, 0].numpy(), images[[0, 3, 4]])
    assert load(zipped, classes=("2",), limit=2).images.shape[0] == 2  # --limit cuts after
    with pytest.raises(GanError, match="has no class '7'"):
        load(zipped, classes=("7",))
    with pytest.raises(GanError, match="carry no labels"):
        load(stylegan_zip(tmp_path / "b.zip", images, None), classes=("2",))


def test_archives_beside_images_are_ignored_in_one_warning(tmp_path, warned):
    images, labels = mnist(5)
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(png(images[i]))
    stylegan_zip(tmp_path / "more.zip", images, labels)
    shards(tmp_path / "deeper", images, labels, per_shard=2)
    data = load(tmp_path)
    assert len(data.images) == 3 and data.labels is None  # the images, read as before
    [said] = [m for m in warned if "archive" in m]
    assert said.startswith("Ignored 4 archive(s) under") and "give --data the archive" in said


def test_unusable_labels_leave_the_data_unlabelled_with_one_warning(tmp_path, warned):
    images, labels = mnist(6)
    assert load(stylegan_zip(tmp_path / "null.zip", images, None)).labels is None
    assert not warned  # StyleGAN2-ADA's own way of saying "no labels"

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for index, pixels in enumerate(images):
            zf.writestr(f"{index}.png", png(pixels))
        zf.writestr("dataset.json", "[" * 100_000)  # nested past the parser's stack
    assert load(bad).labels is None
    assert len(warned) == 1 and "Ignored the labels" in warned[0]
    huge = stylegan_zip(tmp_path / "huge.zip", images, labels)
    patch_sizes(huge, 300 * MB, "dataset.json")  # declared only: nothing that large is read
    assert load(huge).labels is None and "larger than 256 MiB" in warned[-1]

    folder = shards(tmp_path / "partly", images, labels, per_shard=6)
    with tarfile.open(folder / "shard-000001.tar", "w") as tar:
        add(tar, "extra.png", png(images[0]))  # no .cls beside it
        add(tar, "odd.png", png(images[1]))
        add(tar, "odd.cls", b"seven")
    assert load(folder).labels is None
    assert "2 of 8 images" in warned[-1]

    done = run_cli("train", "--dataset", "folder", "--data", bad, "--conditional", *TINY,
                   "--workdir", tmp_path / "w", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1 and len(error_lines(done)) == 1
    assert "dataset.json or .cls labels" in error_lines(done)[0]


# ---- hostile archives ---------------------------------------------------------------------


def hostile_tar(path: Path) -> Path:
    images, _ = mnist(3)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for index, pixels in enumerate(images):
            add(tar, f"{index}.png", png(pixels))
        add(tar, "../evil.png", png(images[0]))
        add(tar, "/etc/absolute.png", png(images[0]))
        add(tar, "a/../../climbs.png", png(images[0]))
        add(tar, "link.png", kind=tarfile.SYMTYPE, link="/etc/passwd")
        add(tar, "hard.png", kind=tarfile.LNKTYPE, link="0.png")
        add(tar, "device.png", kind=tarfile.CHRTYPE)
        add(tar, "fifo.png", kind=tarfile.FIFOTYPE)
    return path


def hostile_zip(path: Path) -> Path:
    images, _ = mnist(3)
    with zipfile.ZipFile(path, "w") as zf:
        for index, pixels in enumerate(images):
            zf.writestr(f"{index}.png", png(pixels))
        zf.writestr("../evil.png", png(images[0]))
        zf.writestr("/etc/absolute.png", png(images[0]))
        link = zipfile.ZipInfo("link.png")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("make", "refused"),
    [
        (lambda p: hostile_tar(p / "x.tar"), 7),
        (lambda p: hostile_zip(p / "x.zip"), 3),
    ],
    ids=["tar", "zip"],
)
def test_members_that_climb_out_or_are_links_or_devices_are_skipped(tmp_path, warned, make,
                                                                   refused):  # fmt: skip
    source = make(tmp_path)
    before = listing(tmp_path)
    data = load(source)
    assert len(data.images) == 3 and listing(tmp_path) == before
    assert len(warned) == 1 and warned[0].startswith(f"Skipped {refused} archive member(s)")


def patch_sizes(path: Path, size: int, which: str) -> None:
    """Make the ZIP's member `which` declare `size` bytes, in its local and central headers."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        while data[at + (30 if signature == b"PK\x03\x04" else 46) :].find(which.encode()) != 0:
            at = data.find(signature, at + 4)
        data[at + offset : at + offset + 4] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


def test_a_zip_member_declaring_gigabytes_is_skipped_unread(tmp_path, warned):
    archive = hostile_zip(tmp_path / "x.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("big.png", b"tiny")
    patch_sizes(archive, 0xFFFF_FFF0, "big.png")
    assert len(load(archive).images) == 3
    assert "Skipped 4 archive member(s)" in warned[0]


def test_a_zip_member_inflating_past_its_declared_size_is_skipped(tmp_path, warned):
    images, _ = mnist(3)
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for index, pixels in enumerate(images):
            zf.writestr(f"{index}.png", png(pixels))
        zf.writestr("bomb.png", png(images[0]) + bytes(64 * MB))
    patch_sizes(archive, 100, "bomb.png")
    assert len(load(archive).images) == 3
    assert "bomb.png" in warned[0] and "CRC" in warned[0]  # read no further than declared


def test_a_tar_member_declaring_more_than_the_file_holds_is_skipped(tmp_path, warned):
    archive = hostile_tar(tmp_path / "x.tar")
    with tarfile.open(archive) as tar:
        end = tar.getmembers()[-1].offset_data  # the last member (a FIFO) has no data
    with open(archive, "r+b") as f:
        f.seek(end)  # over tar's closing zero blocks
        info = tarfile.TarInfo("huge.png")
        info.size = 3 << 30  # header only: the archive ends here
        f.write(info.tobuf(tarfile.GNU_FORMAT))
        f.truncate()
    assert len(load(archive).images) == 3
    assert warned[0].startswith("Skipped 8 archive member(s)"), warned  # 7 + huge.png


@pytest.mark.parametrize(
    "header",
    [
        {"comment": "0" * 60_000},  # a digit run: quadratic in Python < 3.11.10 (an hour)
        {"comment": "1 hdrcharset=" * 4_000},  # a field searched for from every digit
        {"comment": "x" * (MAX_EXTENDED_BYTES + 1)},  # larger than any header needs
    ],
    ids=["digits", "hdrcharset", "huge"],
)
def test_tar_headers_that_tarfile_parses_slowly_end_the_listing_at_once(tmp_path, warned,
                                                                       header):  # fmt: skip
    images, _ = mnist(3)
    with tarfile.open(tmp_path / "x.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        for index, pixels in enumerate(images):
            add(tar, f"{index}.png", png(pixels))
        info = tarfile.TarInfo("slow.png")
        info.pax_headers = header
        tar.addfile(info, io.BytesIO())
        add(tar, "after.png", png(images[0]))  # not reached: the listing stops at the header
    started = time.perf_counter()
    assert len(load(tmp_path / "x.tar").images) == 3
    assert time.perf_counter() - started < 5
    assert any("Could not read 1 archive(s)" in m for m in warned), warned


def test_a_compressed_tar_is_one_sentence(tmp_path):
    (tmp_path / "shard.tar.gz").write_bytes(gzip.compress(b"\0" * 1024))
    done = run_cli("data", "info", "--dataset", "folder", "--data", tmp_path / "shard.tar.gz",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1 and len(error_lines(done)) == 1
    assert "compressed tar" in error_lines(done)[0]


@pytest.mark.parametrize(
    ("name", "content", "phrase"),
    [
        ("garbage.zip", b"PK\x03\x04" + bytes(range(256)) * 4, "could not be read"),
        ("empty.tar", b"", "No image files"),
        ("shards/*.tar", None, "matches no .zip or .tar files"),
    ],
)
def test_unreadable_archives_and_empty_patterns_are_one_sentence(tmp_path, name, content, phrase):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    done = run_cli("data", "info", "--dataset", "folder", "--data", tmp_path / name, cwd=tmp_path)
    assert done.returncode == 1 and len(error_lines(done)) == 1, done.stderr
    assert phrase in error_lines(done)[0]


@pytest.mark.parametrize("name", ["cut.zip", "shards/*.zip"])
def test_zips_cut_short_are_one_sentence_without_a_warning_before_it(tmp_path, name):
    whole = stylegan_zip(tmp_path / "whole.zip", *mnist(40)).read_bytes()
    (tmp_path / "shards").mkdir()
    for target in ("cut.zip", "shards/a.zip", "shards/b.zip"):
        (tmp_path / target).write_bytes(whole[: len(whole) // 2])  # a download cut short
    done = run_cli("data", "info", "--dataset", "folder", "--data", tmp_path / name, cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.strip() == error_lines(done)[0], done.stderr
    assert "could not be read (first: " in done.stderr


# ---- mri -------------------------------------------------------------------------------------


def test_mri_reads_slices_and_volumes_from_a_zip_as_from_a_folder(tmp_path):
    from gan.data.mri import SAMPLE_DIR

    folder = tmp_path / "folder"
    folder.mkdir()
    for path in sorted(SAMPLE_DIR.glob("*.png"))[:4]:
        (folder / path.name).write_bytes(path.read_bytes())
    if SHARED_MRI.is_file():  # a NIfTI volume beside the slices (skipped without ../shared)
        (folder / SHARED_MRI.name).write_bytes(SHARED_MRI.read_bytes())
    with zipfile.ZipFile(tmp_path / "mri.zip", "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, path.name)
    config = {"name": "mri", "image_size": (64, 48)}
    from_folder = load_dataset(DataConfig(source=str(folder), **config))
    from_zip = load_dataset(DataConfig(source=str(tmp_path / "mri.zip"), **config))
    assert len(from_zip.images) == len(from_folder.images) >= 4
    assert np.array_equal(from_zip.images.numpy(), from_folder.images.numpy())
