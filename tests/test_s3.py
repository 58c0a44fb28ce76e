"""s3:// sources against a real S3 server on 127.0.0.1 (moto), with no mocks of boto3.

The code under test reaches the server through AWS_ENDPOINT_URL, like a user with MinIO or
a local server would; a counting proxy in front of it (tests/s3_server.py) records which
objects were fetched and can play a server that dies mid-transfer. Most cases call the library
(`load_dataset`, `fetch`) or the CLI in-process; the end-to-end run uses real subprocesses.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import nibabel
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from typer.testing import CliRunner

from gan.checkpoint import load_checkpoint
from gan.cli import app
from gan.config import DataConfig
from gan.data import load_dataset
from gan.data.bps import PUBLIC_PREFIX, decode_tiff, read_meta, select
from gan.data.nifti import axial_slices
from gan.data.s3 import MemoryFile, S3Settings, fetch
from gan.data.s3_cache import MANIFEST
from gan.errors import GanError
from tests.conftest import run_cli
from tests.s3_server import S3, bps_files, make_bps_dataset, sidecar, write_files

pytest_plugins = ["tests.s3_server"]

TINY = ("--max-steps", "1", "--batch-size", "4", "--device", "cpu", "--image-size", "32x32")
BPS_URI = "s3://bps-data/Microscopy/train/"


# ---- helpers ---------------------------------------------------------------------------------


def load(name: str, source: str | Path | None, size=None, **options):
    return load_dataset(
        DataConfig(
            name=name, source=None if source is None else str(source), image_size=size, **options
        )
    )


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def coded(i: int, size: int = 8) -> np.ndarray:
    """A grayscale size x size image whose first two pixels spell i (base 256)."""
    image = (np.add.outer(np.arange(size), np.arange(size)) * 9 % 256).astype(np.uint8)
    image[0, 0], image[0, 1] = i // 256, i % 256
    return image


def codes(images: torch.Tensor) -> list[int]:
    return (images[:, 0, 0, 0].long() * 256 + images[:, 0, 0, 1].long()).tolist()


def pngs(n: int, size: int = 8) -> dict[str, bytes]:
    return {f"img-{i:04d}.png": png(coded(i, size)) for i in range(n)}


def cached_files(root: Path) -> dict[str, Path]:
    """Relative name -> path of every file in the cache a user could mistake for data."""
    return {
        str(p.relative_to(root)): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture
def bps(s3: S3) -> list[dict]:
    """36 BPS rows (every particle/hours/dose combination twice) uploaded to BPS_URI."""
    s3.bucket("bps-data")
    return make_bps_dataset(BPS_URI, n=36, s3=s3)


def bps_keys(rows: list[dict]) -> set[str]:
    return {"Microscopy/train/" + r["filename"] for r in rows}


def cli(*args: str | Path) -> tuple[int, str]:
    """Run the CLI in-process; (exit code, stderr). Any exception but a clean exit fails."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"gan raised {result.exception!r}") from result.exception
    return result.exit_code, result.stderr


def one_sentence(code: int, stderr: str, *phrases: str) -> str:
    """Exit 1 with a single 'Error: ...' sentence naming the phrases, and no traceback."""
    assert code == 1, f"exit {code}:\n{stderr}"
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, stderr
    message = errors[0]
    assert message.endswith(".") and 20 < len(message) < 400, message
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    return message


# ---- listing, anonymous access, cache --------------------------------------------------------


def test_listing_follows_pages_past_1000_keys(s3):
    s3.bucket("many-pngs")
    files = pngs(1100)
    s3.put_many("many-pngs", "digits", {**files, "notes.txt": b"not an image"})
    data = load("folder", "s3://many-pngs/digits/")
    assert data.images.shape == (1100, 1, 8, 8)
    assert codes(data.images) == list(range(1100))  # every object, once, in key order
    assert data.extra["s3_objects"] == data.extra["s3_downloaded"] == 1100
    assert data.extra["s3_cached"] == 0
    assert s3.proxy.listings("many-pngs") == 2  # 1,000 keys, then the other 101
    assert sorted(s3.proxy.object_gets()) == sorted("digits/" + k for k in files)
    assert len(cached_files(s3.cache_dir / "many-pngs" / "digits")) == 1100


def test_public_bucket_is_read_anonymously_with_no_sign_request(s3):
    s3.bucket("open-data", public=True)
    s3.put_many("open-data", "imgs", pngs(6), acl="public-read")
    s3.anonymous()
    data = load("folder", "s3://open-data/imgs", no_sign_request=True)
    assert codes(data.images) == list(range(6))
    assert s3.proxy.requests and not any(r.signed for r in s3.proxy.requests)
    with pytest.raises(GanError, match="No AWS credentials were found") as info:
        load("folder", "s3://open-data/imgs", cache_dir=str(s3.tmp / "other"))
    assert "--no-sign-request" in str(info.value)


def test_cli_reads_a_public_bucket_into_memory_with_s3_flags(s3, tmp_path):
    s3.bucket("open-data", public=True)
    s3.put_many("open-data", "imgs", pngs(6, 16), acl="public-read")
    s3.anonymous()
    work = tmp_path / "work"
    code, stderr = cli(
        "train", "--dataset", "folder", "--data", "s3://open-data/imgs/", "--model", "mlp",
        "--no-sign-request", "--no-cache", "--s3-workers", "2", *TINY,
        "--workdir", work, "--run-name", "anon",
    )  # fmt: skip
    assert code == 0, stderr
    run = json.loads((work / "logs" / "anon" / "run.json").read_text())
    assert run["data"]["no_sign_request"] and run["data"]["no_cache"]
    assert run["data"]["s3_workers"] == 2
    assert run["dataset"]["num_images"] == run["dataset"]["s3_downloaded"] == 6
    assert not s3.cache_dir.exists()
    assert not any(r.signed for r in s3.proxy.requests)


def test_default_bps_source_is_the_public_bucket_read_anonymously(s3):
    bucket, _, prefix = PUBLIC_PREFIX[len("s3://") :].partition("/")
    s3.bucket(bucket, public=True)
    rows = make_bps_dataset(PUBLIC_PREFIX, n=8, s3=s3, acl="public-read")
    s3.anonymous()
    data = load("bps", None, (32, 32))  # no --data, no --no-sign-request, no credentials
    assert data.images.shape == (8, 1, 32, 32)
    assert data.extra["s3_uri"] == PUBLIC_PREFIX
    assert set(s3.proxy.object_gets()) == {prefix + "meta.csv"} | {
        prefix + r["filename"] for r in rows
    }
    assert not any(r.signed for r in s3.proxy.requests)


def test_second_run_is_served_from_the_cache_and_a_changed_object_is_fetched_again(s3):
    s3.bucket("cached")
    etags = {k: s3.put("cached", "set/" + k, v) for k, v in pngs(5, 12).items()}
    first = load("folder", "s3://cached/set/")
    assert (first.extra["s3_downloaded"], first.extra["s3_cached"]) == (5, 0)
    cached = cached_files(s3.cache_dir / "cached" / "set")
    assert sorted(cached) == sorted(etags)
    for name, path in cached.items():
        assert sidecar(path)["etag"] == etags[name]
        assert sidecar(path)["size"] == path.stat().st_size

    s3.proxy.reset()
    second = load("folder", "s3://cached/set/")
    assert (second.extra["s3_downloaded"], second.extra["s3_cached"]) == (0, 5)
    assert s3.proxy.object_gets() == [] and s3.proxy.listings() == 1
    assert torch.equal(first.images, second.images)

    changed = png(np.full((12, 12), 77, dtype=np.uint8))
    new_etag = s3.put("cached", "set/img-0002.png", changed)
    assert new_etag != etags["img-0002.png"]
    s3.proxy.reset()
    third = load("folder", "s3://cached/set/")
    assert (third.extra["s3_downloaded"], third.extra["s3_cached"]) == (1, 4)
    assert s3.proxy.object_gets() == ["set/img-0002.png"]
    assert cached["img-0002.png"].read_bytes() == changed
    assert sidecar(cached["img-0002.png"])["etag"] == new_etag
    assert int(third.images[2].float().mean().round()) == 77
    assert torch.equal(third.images[[0, 1, 3, 4]], second.images[[0, 1, 3, 4]])

    # A damaged cached file (wrong size) or one without its ETag record is not trusted.
    cached["img-0003.png"].write_bytes(b"\x89PNG truncated")
    manifest = s3.cache_dir / "cached" / ".gan-manifest.json"
    entries = json.loads(manifest.read_text())
    del entries["set/img-0004.png"]
    manifest.write_text(json.dumps(entries))
    s3.proxy.reset()
    fourth = load("folder", "s3://cached/set/")
    assert (fourth.extra["s3_downloaded"], fourth.extra["s3_cached"]) == (2, 3)
    assert sorted(s3.proxy.object_gets()) == ["set/img-0003.png", "set/img-0004.png"]
    assert torch.equal(fourth.images, third.images)


def test_no_cache_loads_the_same_images_and_writes_nothing(s3):
    s3.bucket("volatile")
    s3.put_many("volatile", "p", pngs(5, 10))
    explicit = s3.tmp / "explicit-cache"
    in_memory = load("folder", "s3://volatile/p/", no_cache=True, cache_dir=str(explicit))
    assert in_memory.extra["s3_downloaded"] == 5
    assert not explicit.exists() and not s3.cache_dir.exists()
    assert not (s3.tmp / "home" / ".cache").exists()
    cached = load("folder", "s3://volatile/p/", cache_dir=str(explicit))
    assert torch.equal(in_memory.images, cached.images)
    assert codes(cached.images) == list(range(5))
    assert len(cached_files(explicit)) == 5 and not s3.cache_dir.exists()


# ---- mri and mnist from S3 -------------------------------------------------------------------


def nifti_gz(shape=(28, 24, 10)) -> bytes:
    """A small synthetic head: an ellipsoid of 'tissue' with some texture, as .nii.gz bytes."""
    rng = np.random.default_rng(3)
    grid = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    inside = sum((g / r) ** 2 for g, r in zip(grid, (0.8, 0.85, 0.9), strict=True)) < 1
    data = (inside * (600 + 80 * rng.standard_normal(shape))).clip(0).astype(np.float32)
    image = nibabel.Nifti1Image(data, np.diag([1.5, 1.5, 3.0, 1.0]))
    return gzip.compress(image.to_bytes())


def test_mri_from_s3_mixes_png_slices_and_a_nifti_volume(s3):
    yy, xx = np.mgrid[0:40, 0:32]
    head = ((yy - 20) / 15) ** 2 + ((xx - 16) / 11) ** 2 < 1
    slices = {f"slice-{i}.png": png((head * (90 + 60 * i)).astype(np.uint8)) for i in range(3)}
    files = {**slices, "volume.nii.gz": nifti_gz(), "notes.json": b"{}"}
    local = write_files(s3.tmp / "mri-local", files)
    s3.bucket("brains")
    s3.put_many("brains", "study-1", files)

    expected_slices = len(axial_slices(local / "volume.nii.gz", (32, 32)))
    assert expected_slices >= 3
    remote = load("mri", "s3://brains/study-1/", (32, 32))
    assert remote.images.shape == (3 + expected_slices, 1, 32, 32)
    assert remote.extra["files"] == 4 and remote.extra["s3_objects"] == 4
    assert "study-1/notes.json" not in s3.proxy.object_gets()
    assert torch.equal(remote.images, load("mri", local, (32, 32)).images)
    in_memory = load("mri", "s3://brains/study-1/", (32, 32), no_cache=True)
    assert torch.equal(remote.images, in_memory.images)


def test_mnist_from_s3(s3, mnist_dir):
    s3.bucket("digits")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        s3.put("digits", f"mnist/raw/{name}", (mnist_dir / name).read_bytes())
    remote = load("mnist", "s3://digits/mnist/")
    local = load("mnist", mnist_dir)
    assert remote.images.shape == (1000, 1, 28, 28)
    assert torch.equal(remote.images, local.images)
    assert torch.equal(remote.labels, local.labels) and remote.classes == local.classes
    assert remote.extra["split"] == "test" and remote.extra["s3_objects"] == 2
    assert sorted(s3.proxy.object_gets()) == [
        "mnist/raw/t10k-images-idx3-ubyte.gz",
        "mnist/raw/t10k-labels-idx1-ubyte.gz",
    ]
    in_memory = load("mnist", "s3://digits/mnist/", (14, 14), no_cache=True)
    assert in_memory.images.shape == (1000, 1, 14, 14)


# ---- bps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "particle, dose, hours",
    [
        ("Fe", (), ()),
        ("x-ray", (0.1,), ()),  # particle names match case-insensitively
        (None, (), (24,)),
        ("Fe", (0.3, 0.82), (4, 48)),
        (None, (0.0,), (4, 48)),
    ],
)
def test_bps_filters_select_exactly_the_matching_rows_and_fetch_only_those(
    s3, bps, particle, dose, hours
):
    expected = [
        r
        for r in bps
        if (particle is None or r["particle_type"].lower() == particle.lower())
        and (not dose or r["dose_Gy"] in dose)
        and (not hours or r["hr_post_exposure"] in hours)
    ]
    assert 0 < len(expected) < len(bps)
    data = load("bps", BPS_URI, (32, 32), particle=particle, dose=dose, hours=hours)
    assert data.images.shape == (len(expected), 1, 32, 32)
    assert data.extra["matched"] == data.extra["s3_downloaded"] == len(expected)
    assert set(s3.proxy.object_gets()) == {"Microscopy/train/meta.csv"} | bps_keys(expected)
    cached = cached_files(s3.cache_dir / "bps-data" / "Microscopy" / "train")
    assert set(cached) == {r["filename"] for r in expected}


def test_bps_filter_description_is_recorded(s3, bps):
    data = load("bps", BPS_URI, (32, 32), particle="Fe", dose=(0.3, 0.82), hours=(4, 48))
    assert data.extra["filters"] == "--particle Fe --dose 0.3 --dose 0.82 --hours 4 --hours 48"
    assert data.summary()["num_images"] == data.extra["matched"]


def _pinned_split(filename: str, fractions: tuple[float, float, float]) -> str:
    """The documented scheme, written out independently: sha256 of the name -> [0, 1)."""
    u = int.from_bytes(hashlib.sha256(filename.encode()).digest()[:8], "big") / 2**64
    return "train" if u < fractions[0] else "val" if u < fractions[0] + fractions[1] else "test"


def test_bps_split_is_deterministic_disjoint_and_covers_every_row(s3, bps):
    fractions = (0.6, 0.2, 0.2)
    meta = read_meta(s3.client.get_object(Bucket="bps-data", Key="Microscopy/train/meta.csv")
                     ["Body"].read().decode(), "meta.csv")  # fmt: skip
    names, sizes = {}, {}
    for split in ("train", "val", "test"):
        s3.proxy.reset()
        config = DataConfig(
            name="bps", source=BPS_URI, image_size=(16, 16), split=split, split_fractions=fractions
        )
        names[split] = {r["filename"] for r in select(meta, config)}
        data = load_dataset(config)
        sizes[split] = data.images.shape[0]
        assert sizes[split] == len(names[split]) > 0
        assert set(s3.proxy.object_gets()) - {"Microscopy/train/meta.csv"} == bps_keys(
            [{"filename": n} for n in names[split]]
        )
        assert torch.equal(data.images, load_dataset(config).images)  # same split again
        assert names[split] == {
            r["filename"] for r in bps if _pinned_split(r["filename"], fractions) == split
        }
    assert not names["train"] & names["val"] and not names["train"] & names["test"]
    assert not names["val"] & names["test"]
    assert names["train"] | names["val"] | names["test"] == {r["filename"] for r in bps}
    assert sum(sizes.values()) == len(bps) == load("bps", BPS_URI, (16, 16)).images.shape[0]


def test_bps_percentile_clipping_spans_0_to_255_and_resizing_works(s3, bps):
    data = load("bps", BPS_URI, (24, 40))
    assert data.images.shape == (36, 1, 24, 40) and data.images.dtype == torch.uint8
    per_image = data.images.flatten(1).float()
    assert (per_image.amin(1) <= 10).all() and (per_image.amax(1) >= 128).all()

    cached = cached_files(s3.cache_dir / "bps-data" / "Microscopy" / "train")
    assert len(cached) == 36
    for path in cached.values():
        raw = tifffile.imread(path)
        assert raw.dtype == np.uint16 and raw.min() >= 200 and raw.max() <= 30000
        assert min(raw.shape) >= 40 and max(raw.shape) <= 90
        native = decode_tiff(path, raw.shape, (0.5, 99.5))[0]  # no resizing: the clip alone
        assert native.min() == 0 and native.max() == 255
        saturated = (native == 255).mean()
        assert 0.003 <= saturated <= 0.03, saturated
        assert (decode_tiff(path, raw.shape, (5, 95))[0] == 255).mean() > 0.04
        plain = decode_tiff(path, raw.shape, (0, 100))[0].astype(int)  # min-max scaling
        ref = np.round((raw - raw.min()) / float(raw.max() - raw.min()) * 255).astype(int)
        assert np.abs(plain - ref).max() <= 1
        # Per-image clipping: a dimmer exposure of the same cell looks the same.
        dimmed = io.BytesIO()
        tifffile.imwrite(dimmed, raw // 4 + 50)
        again = decode_tiff(MemoryFile("s3://x/dim.tif", dimmed.getvalue()), raw.shape, (0.5, 99.5))
        again = again[0].astype(int)
        assert np.abs(again - native.astype(int)).max() <= 2


def test_bps_local_folder_and_s3_give_identical_tensors(s3, bps):
    make_bps_dataset(s3.tmp / "bps-local", n=36)  # the same bytes as the uploaded copy
    options = {"particle": "Fe", "hours": (4, 24)}
    local = load("bps", s3.tmp / "bps-local", (32, 32), **options)
    remote = load("bps", BPS_URI, (32, 32), **options)
    assert torch.equal(local.images, remote.images)


def test_bps_local_folder_and_s3_give_the_same_images(s3, bps):
    make_bps_dataset(s3.tmp / "bps-local", n=36)  # the same bytes as the uploaded copy
    options = {"particle": "Fe", "hours": (4, 24)}
    local = load("bps", s3.tmp / "bps-local", (32, 32), **options)
    remote = load("bps", BPS_URI, (32, 32), **options)
    in_memory = load("bps", BPS_URI, (32, 32), no_cache=True, **options)
    assert torch.equal(remote.images, in_memory.images)
    names = [
        r["filename"] for r in bps if r["particle_type"] == "Fe" and r["hr_post_exposure"] < 48
    ]
    assert local.images.shape == remote.images.shape == (len(names), 1, 32, 32)
    assert torch.equal(local.images, remote.images)  # both in file-name order


def test_bps_cli_flags_reach_the_loader_and_the_run_record(s3, bps, tmp_path):
    work = tmp_path / "work"
    flags = (
        "--particle", "X-ray", "--dose", "0", "--dose", "1", "--hours", "24", "--hours", "48",
        "--split", "train", "--split-fractions", "0.5,0.25,0.25", "--clip-percentiles", "1,99",
    )  # fmt: skip
    code, stderr = cli(
        "train", "--dataset", "bps", "--data", BPS_URI, "--model", "mlp", *flags, *TINY,
        "--workdir", work, "--run-name", "flags",
    )  # fmt: skip
    assert code == 0, stderr
    run = json.loads((work / "logs" / "flags" / "run.json").read_text())
    data = run["data"]
    assert data["particle"] == "X-ray" and data["dose"] == [0.0, 1.0]
    assert data["hours"] == [24, 48] and data["split"] == "train"
    assert data["split_fractions"] == [0.5, 0.25, 0.25] and data["clip_percentiles"] == [1, 99]
    expected = select(bps, DataConfig(**{**data, "split_fractions": (0.5, 0.25, 0.25)}))
    assert 0 < len(expected) == run["dataset"]["matched"] == run["dataset"]["num_images"]
    assert set(s3.proxy.object_gets()) == {"Microscopy/train/meta.csv"} | bps_keys(expected)


def test_bps_end_to_end_through_the_cli(s3, bps, tmp_path):
    work, cache = tmp_path / "work", tmp_path / "my-cache"
    fe = [r for r in bps if r["particle_type"] == "Fe"]
    proc = run_cli(
        "train", "--dataset", "bps", "--data", BPS_URI, "--particle", "Fe", "--model", "mlp",
        "--max-steps", "2", "--batch-size", "4", "--image-size", "32x32", "--device", "cpu",
        "--workdir", str(work), "--run-name", "bps-fe", "--cache-dir", str(cache),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = work / "checkpoints" / "last.pt"
    assert last.is_file()
    summary = json.loads((work / "logs" / "bps-fe" / "run.json").read_text())["dataset"]
    assert summary["num_images"] == summary["matched"] == summary["s3_downloaded"] == len(fe)
    assert summary["filters"] == "--particle Fe" and summary["s3_uri"] == BPS_URI
    assert set(cached_files(cache / "bps-data" / "Microscopy" / "train")) == {
        r["filename"] for r in fe
    }
    assert not s3.cache_dir.exists()  # --cache-dir replaced the default cache
    assert set(s3.proxy.object_gets()) == {"Microscopy/train/meta.csv"} | bps_keys(fe)

    out = tmp_path / "samples"
    proc = run_cli(
        "sample", str(last), "--num", "1", "--format", "png", "--out", str(out), "--device", "cpu",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = sorted(out.iterdir())
    assert len(written) == 1 and written[0].suffix == ".png"
    with Image.open(written[0]) as image:
        assert image.size == (32, 32)

    data = load_checkpoint(last)["config"]["data"]
    assert data["name"] == "bps" and data["source"] == BPS_URI and data["particle"] == "Fe"
    assert list(data["dose"]) == [] and list(data["hours"]) == [] and data["split"] == "all"
    assert list(data["clip_percentiles"]) == [0.5, 99.5]


# ---- errors ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing_bucket(s3: S3) -> list[str]:
    return ["--dataset", "folder", "--data", "s3://no-such-bucket/images/"]


def _no_bucket_name(s3: S3) -> list[str]:
    return ["--dataset", "folder", "--data", "s3:///images/"]


def _empty_prefix(s3: S3) -> list[str]:
    s3.bucket("sparse")
    s3.put_many("sparse", "full", pngs(2))
    return ["--dataset", "mri", "--data", "s3://sparse/empty/"]


def _only_other_files(s3: S3) -> list[str]:
    s3.bucket("sparse")
    s3.put_many("sparse", "docs", {"readme.txt": b"hi", "table.csv": b"a,b\n"})
    return ["--dataset", "folder", "--data", "s3://sparse/docs"]


def _access_denied(s3: S3) -> list[str]:
    s3.bucket("half-open", public=True)
    s3.put_many("half-open", "imgs", pngs(3), acl="public-read")
    s3.put("half-open", "imgs/secret.png", png(coded(9)), acl="private")
    return ["--dataset", "folder", "--data", "s3://half-open/imgs/", "--no-sign-request"]


def _no_credentials(s3: S3) -> list[str]:
    s3.bucket("locked")
    s3.put_many("locked", "imgs", pngs(2))
    s3.anonymous()
    return ["--dataset", "folder", "--data", "s3://locked/imgs/"]


def _meta_missing(s3: S3) -> list[str]:
    s3.bucket("bps-data")
    _, files = bps_files(4)
    del files["meta.csv"]
    s3.put_many("bps-data", "Microscopy/train", files)
    return ["--dataset", "bps", "--data", BPS_URI]


def _meta_columns_missing(s3: S3) -> list[str]:
    s3.bucket("bps-data")
    rows, files = bps_files(4)
    files["meta.csv"] = b"filename,dose_Gy\n" + b"".join(
        f"{r['filename']},{r['dose_Gy']}\n".encode() for r in rows
    )
    s3.put_many("bps-data", "Microscopy/train", files)
    return ["--dataset", "bps", "--data", BPS_URI]


def _meta_private(s3: S3) -> list[str]:
    s3.bucket("bps-data", public=True)
    _, files = bps_files(4)
    s3.put_many("bps-data", "Microscopy/train", files, acl="private")
    return ["--dataset", "bps", "--data", BPS_URI, "--no-sign-request"]


def _no_rows_match(s3: S3) -> list[str]:
    s3.bucket("bps-data")
    make_bps_dataset(BPS_URI, n=12, s3=s3)
    return ["--dataset", "bps", "--data", BPS_URI, "--particle", "Fe", "--dose", "0.1"]


def _endpoint_down(s3: S3) -> list[str]:
    s3.monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    return ["--dataset", "folder", "--data", "s3://anything/images/"]


ERRORS = {
    "missing bucket": (_missing_bucket, ["The bucket of s3://no-such-bucket/images/ does not"]),
    "no bucket name": (_no_bucket_name, ["s3:///images/ has no bucket name"]),
    "empty prefix": (_empty_prefix, ["No images were found under s3://sparse/empty/"]),
    "no image files": (_only_other_files, ["No images were found under s3://sparse/docs"]),
    "access denied": (_access_denied, ["Access to s3://half-open/imgs/secret.png was denied"]),
    "no credentials": (_no_credentials, ["No AWS credentials", "--no-sign-request"]),
    "meta.csv missing": (_meta_missing, [f"{BPS_URI}meta.csv was not found"]),
    "meta.csv columns": (_meta_columns_missing, ["particle_type, hr_post_exposure"]),
    "meta.csv private": (_meta_private, [f"Access to {BPS_URI}meta.csv was denied"]),
    "no rows match": (_no_rows_match, ["--particle Fe --dose 0.1", "relax the filters"]),
    "endpoint down": (_endpoint_down, ["S3 endpoint stopped answering", "AWS_ENDPOINT_URL"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_s3_problems_are_one_sentence_errors(s3, tmp_path, case):
    setup, phrases = ERRORS[case]
    args = setup(s3)
    code, stderr = cli("train", *args, *TINY, "--workdir", tmp_path / "work")
    one_sentence(code, stderr, *phrases)
    assert not (tmp_path / "work" / "checkpoints").exists()


def test_a_corrupt_object_among_good_ones_is_skipped_with_a_warning(s3, warnings_logged):
    s3.bucket("mixed")
    s3.put_many("mixed", "imgs", {**pngs(4), "img-0002b.png": b"\x89PNG\r\n\x1a\n garbage"})
    data = load("folder", "s3://mixed/imgs/")
    assert codes(data.images) == [0, 1, 2, 3]
    assert data.extra["skipped_files"] == 1 and data.extra["s3_objects"] == 5
    assert any("Skipped 1 unreadable" in m and "img-0002b.png" in m for m in warnings_logged)


def test_a_corrupt_tiff_in_bps_is_skipped_with_a_warning(s3, warnings_logged):
    s3.bucket("bps-data")
    rows, files = bps_files(8)
    files[rows[3]["filename"]] = b"II*\x00 not really a tiff"
    s3.put_many("bps-data", "Microscopy/train", files)
    data = load("bps", BPS_URI, (32, 32), no_cache=True)
    assert data.images.shape == (7, 1, 32, 32)
    assert data.extra["skipped_files"] == 1 and data.extra["matched"] == 8
    assert any(rows[3]["filename"] in m for m in warnings_logged), warnings_logged


def test_server_dying_mid_download_keeps_completed_files_and_no_partial_ones(s3):
    s3.bucket("fragile")
    files = pngs(20, 24)
    s3.put_many("fragile", "imgs", files)
    settings = S3Settings(workers=4, cache_dir=s3.tmp / "cache")
    s3.proxy.die_after(5)
    with pytest.raises(GanError) as info:
        fetch("s3://fragile/imgs/", (".png",), settings)
    message = str(info.value)
    assert "stopped answering" in message and "stay cached" in message
    assert "\n" not in message and message.endswith(".")
    assert any(r.cut for r in s3.proxy.requests)  # a body really was cut off halfway

    root = s3.tmp / "cache" / "fragile" / "imgs"
    everything = [p for p in root.rglob("*") if p.is_file()]
    assert not [p for p in everything if p.name.endswith((".part", ".tmp"))]
    kept = cached_files(root)
    assert len(kept) == 5  # exactly the downloads that completed
    for name, path in kept.items():
        assert path.read_bytes() == files[name]  # never a partial file under a final name
        assert sidecar(path)["size"] == len(files[name])
    manifest = json.loads((s3.tmp / "cache" / "fragile" / MANIFEST).read_text())
    assert set(manifest) == {"imgs/" + n for n in kept}  # saved although the fetch failed

    s3.proxy.reset()  # the server is back: only the missing 15 are fetched
    again = fetch("s3://fragile/imgs/", (".png",), settings)
    assert (again.downloaded, again.reused) == (15, 5)
    assert sorted(p.read_bytes() for p in again.files) == sorted(files.values())


def test_object_keys_that_would_leave_the_cache_are_skipped(s3, warnings_logged):
    s3.bucket("sneaky")
    escape = s3.tmp / "outside" / "absolute.png"  # a key with a leading '/'
    s3.put("sneaky", "imgs/ok.png", png(coded(1)))
    s3.put("sneaky", "imgs/../../../../escaped.png", png(coded(2)))
    s3.put("sneaky", str(escape), png(coded(3)))
    cache = s3.tmp / "a" / "b" / "cache"
    fetched = fetch("s3://sneaky/", (".png",), S3Settings(cache_dir=cache))
    assert fetched.files == [cache / "sneaky" / "imgs" / "ok.png"]
    assert any("Skipped 2 object(s)" in m for m in warnings_logged), warnings_logged
    written = [p for p in s3.tmp.rglob("*") if p.is_file() and "xdg-cache" not in p.parts]
    assert sorted(p.relative_to(cache) for p in written) == [
        Path("sneaky/.gan-manifest.json"),
        Path("sneaky/.gan-manifest.json.lock"),
        Path("sneaky/imgs/ok.png"),
    ]


# ---- gan data info and --limit ----------------------------------------------------------------


def test_data_info_counts_bps_from_meta_csv_alone(s3, bps):
    result = run_cli("data", "info", "--dataset", "bps", "--data", BPS_URI, "--json",
                     cwd=s3.tmp)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert s3.proxy.object_gets() == ["Microscopy/train/meta.csv"]  # no image was downloaded
    assert summary["rows"] == summary["matched"] == len(bps) == 36
    assert sum(g["images"] for g in summary["groups"]) == 36
    assert len(summary["groups"]) == 18  # 2 particles x 3 doses x 3 hours
    for g in summary["groups"]:
        key = (g["particle"], g["dose_Gy"], g["hours"])
        expected = [
            r for r in bps if (r["particle_type"], r["dose_Gy"], r["hr_post_exposure"]) == key
        ]
        assert g["images"] == len(expected) == g["train"] + g["val"] + g["test"]
    assert sum(summary["splits"].values()) == 36
    s3.proxy.reset()
    table = run_cli("data", "info", "--dataset", "bps", "--data", BPS_URI, "--particle", "Fe",
                    "--split", "train", cwd=s3.tmp)  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert s3.proxy.object_gets() == ["Microscopy/train/meta.csv"]
    fe = [r for r in bps if r["particle_type"] == "Fe"]
    assert "36 rows; " in table.stdout and "--particle Fe --split train" in table.stdout
    assert "X-ray" not in table.stdout and table.stdout.count("\nFe ") == 9
    all_row = next(line for line in table.stdout.splitlines() if line.startswith("all "))
    assert all_row.split()[1] == str(len(fe))  # the 'all' row: every Fe image, all splits


def test_data_info_on_other_datasets_summarises_the_loaded_data(tmp_path):
    from tests.conftest import MNIST_1K

    result = run_cli("data", "info", "--dataset", "mnist", "--data", MNIST_1K, "--limit", "100",
                     "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["num_images"] == 100 and sum(summary["classes"].values()) == 100


def test_limit_takes_the_first_objects_in_key_order(s3, bps):
    s3.bucket("many")
    s3.put_many("many", "p/", pngs(30))
    data = load("folder", "s3://many/p/", limit=7)
    assert codes(data.images) == list(range(7))
    assert sorted(s3.proxy.object_gets("many")) == [f"p/img-{i:04d}.png" for i in range(7)]
    s3.proxy.reset()
    limited = load("bps", BPS_URI, (32, 32), limit=5, particle="X-ray")
    first = sorted(r["filename"] for r in bps if r["particle_type"] == "X-ray")[:5]
    assert len(limited.images) == 5 and limited.extra["matched"] == 18
    assert set(s3.proxy.object_gets()) == {"Microscopy/train/meta.csv"} | bps_keys(
        [{"filename": f} for f in first]
    )


# ---- streaming decode -------------------------------------------------------------------------


def large_bps(s3: S3, n: int, side: int) -> tuple[list[dict], int]:
    """n BPS rows whose TIFFs are side x side uint16 (uncompressed): (rows, raw bytes)."""
    from tests.s3_server import bps_rows, tiff_bytes

    rng = np.random.default_rng(0)
    rows = bps_rows(n, 0)
    files = {r["filename"]: tiff_bytes(rng.integers(0, 65535, (side, side), dtype=np.uint16))
             for r in rows}  # fmt: skip
    meta = "filename,dose_Gy,particle_type,hr_post_exposure\n" + "".join(
        f"{r['filename']},{r['dose_Gy']},{r['particle_type']},{r['hr_post_exposure']}\n"
        for r in rows
    )
    files["meta.csv"] = meta.encode()
    s3.bucket("big")
    s3.put_many("big", "bps/", files)
    return rows, sum(len(v) for k, v in files.items() if k.endswith(".tif"))


PEAK = """
import sys, tracemalloc
from gan.config import DataConfig
from gan.data import load_dataset
config = DataConfig(name="bps", source="s3://big/bps/", image_size=(32, 32), no_cache=True,
                    s3_workers=2)
load_dataset(DataConfig(**{**vars(config), "limit": 1}))  # the imports
# One client made up front: botocore's service models (tens of MB of dicts per client)
# would otherwise dwarf what this test is about, the objects and their decoding.
from gan.data import bps, s3
from gan.data.sources import s3_settings
client = s3.make_client(s3_settings(config))
client.get_object(Bucket="big", Key="bps/meta.csv")["Body"].read()
list(client.get_paginator("list_objects_v2").paginate(Bucket="big", Prefix="bps/"))
s3.make_client = bps.make_client = lambda settings: client
tracemalloc.start()
peaks = []
for limit in (16, 48):
    tracemalloc.reset_peak()
    data = load_dataset(DataConfig(**{**vars(config), "limit": limit}))
    peaks.append(tracemalloc.get_traced_memory()[1])
print(len(data.images), *peaks)
"""


def test_no_cache_decodes_as_objects_arrive_so_memory_does_not_grow_with_raw_size(s3):
    rows, raw = large_bps(s3, 48, 512)  # 48 x 512 KB of raw TIFF
    # A process of its own: the S3 server of the tests runs in this one.
    result = subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    count, peak_16, peak_48 = map(int, result.stdout.split())
    assert count == len(rows) == 48
    # Holding every raw object before decoding (the old --no-cache path) peaks above the
    # raw size and triples from 16 objects to 48. Streaming holds the objects in flight
    # (two workers) and their decoding's copies, whatever the number of objects (about
    # 7-8 MB at 16 and 10-11 MB at 48 here: the two workers' copies coincide more often).
    assert peak_48 < raw / 2, (peak_16, peak_48, raw)
    # 32 more objects are 2/3 of `raw` more bytes; holding them would add that much.
    assert peak_48 - peak_16 < raw / 3, (peak_16, peak_48, raw)


def test_decoded_images_are_cached_by_etag_and_settings(s3, bps, monkeypatch):
    first = load("bps", BPS_URI, (32, 32))
    assert first.extra["s3_downloaded"] == len(bps) and not first.extra.get("decoded_cached")
    decoded = list((s3.cache_dir / ".decoded").glob("*.npz"))
    assert len(decoded) == 1
    s3.proxy.reset()

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    with monkeypatch.context() as patched:
        patched.setattr("gan.data.bps.decode_tiff", no_decoding)
        again = load("bps", BPS_URI, (32, 32))
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    assert again.extra["decoded_cached"] and s3.proxy.object_gets() == ["Microscopy/train/meta.csv"]
    other = load("bps", BPS_URI, (16, 16))  # other settings: decoded anew, from the raw cache
    assert (
        other.images.shape[-2:] == (16, 16)
        and s3.proxy.object_gets() == ["Microscopy/train/meta.csv"] * 2
    )
    assert len(list((s3.cache_dir / ".decoded").glob("*.npz"))) == 2
    # A changed object (new ETag) is downloaded and decoded again.
    name = sorted(r["filename"] for r in bps)[0]
    s3.client.put_object(Bucket="bps-data", Key="Microscopy/train/" + name, Body=b"not a tiff")
    s3.proxy.reset()
    changed = load("bps", BPS_URI, (32, 32))
    assert changed.extra.get("skipped_files") == 1 and len(changed.images) == len(bps) - 1
    assert "Microscopy/train/" + name in s3.proxy.object_gets()
