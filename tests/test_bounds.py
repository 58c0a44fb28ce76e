"""Bounds that hold before anything costs: a checkpoint is checked before its digest walks
it or a model is given memory; datasets, volumes and TIFF strips are bounded in total, not
only one by one; the plan holds a run to the limits its checkpoints are loaded with; and
every parser of a user's file or keyword turns any bad content into one sentence.

Nothing huge is allocated: the "huge" cases are small files that declare or imply a lot,
or a machine made small by replacing `gan.data.limits.physical_memory`.
"""

from __future__ import annotations

import json
import struct
import time
import zipfile
import zlib
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
from loguru import logger
from PIL import Image

import gan.data.limits
from gan.checkpoint import DIGEST, content_digest, load_checkpoint, save_atomic, step_path
from gan.config import Config
from gan.errors import GanError
from tests.conftest import MNIST_1K, run_gan
from tests.test_bad_input import cli_in, expect_error
from tests.test_hostile_data import peak_memory
from tests.test_s3 import load, pngs

pytest_plugins = ["tests.s3_server"]
MB = 1 << 20


@pytest.fixture
def skipped() -> list[str]:
    """The warnings logged about skipped files while the test runs."""
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)


def small_machine(monkeypatch, nbytes: int) -> None:
    """Make gan see a machine with `nbytes` of memory."""
    monkeypatch.setattr(gan.data.limits, "physical_memory", lambda: nbytes)


def mlp_state(shape=(1, 8, 8), step: int = 1, **config: dict) -> dict:
    """A complete checkpoint of an 8x8 mlp, its weights those of a fresh G."""
    from gan.models import build_models

    generator, _ = build_models("mlp", shape, 100)
    raw = Config().to_dict()
    for section, values in config.items():
        raw[section] |= values
    return {
        "format_version": 1, "step": step, "run_name": "r",
        "model": {"name": "mlp", "image_shape": list(shape), "latent_dim": 100},
        "generator": generator.state_dict(), "config": raw,
    }  # fmt: skip


def with_false_digest(state: dict, path: Path) -> Path:
    """Saved as it is, with a digest to check (which e65e87f walked, path by path, first)."""
    torch.save({**state, DIGEST: "sha256:" + "0" * 64}, path)
    return path


def nested_pickle(base: Path, out: Path, depth: int) -> Path:
    """`base` with its `extra` string replaced, in the pickle itself, by a list nested
    `depth` deep (no pickler writes one that deep: it recurses)."""
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for entry in src.infolist():
            data = src.read(entry)
            if entry.filename.endswith("data.pkl"):
                marker = b"X" + struct.pack("<I", 6) + b"MARKER"
                assert marker in data
                data = data.replace(marker, b"]" * depth + b"a" * (depth - 1))
            dst.writestr(entry, data)
    return out


# ---- 2. a checkpoint is checked before it costs anything ----------------------------------------


def _dag(state):
    shared: list = [0]
    for _ in range(24):  # 8^24 paths through 25 lists
        shared = [shared] * 8
    state["extra"] = shared


def _cycle(state):
    loop: list = []
    loop.append(loop)
    state["extra"] = loop


def _expanded(state):  # 4 bytes of storage, 400 GB as a dense tensor
    state["fixed_latents"] = torch.zeros(1).expand(10**9, 100)


def _views(state):  # one 4 MB storage, viewed 100 times: 400 MB to hash
    storage = torch.zeros(MB)
    state["extra"] = [storage[:] for _ in range(100)]


def _huge_int(state):  # a float option as an integer beyond any float
    state["config"]["optim"]["lr_g"] = 10**400


@pytest.mark.parametrize(
    ("edit", "phrase"),
    [(_cycle, "refers to itself"), (_expanded, "not dense"), (_views, "over and over"),
     (_huge_int, "beyond any value")],
    ids=["cycle", "expanded", "views", "huge-int"],
)  # fmt: skip
def test_a_checkpoint_whose_structure_costs_is_refused_before_its_digest(tmp_path, edit, phrase):
    state = mlp_state()
    edit(state)
    path = with_false_digest(state, tmp_path / "handed.pt")
    started = time.monotonic()
    with pytest.raises(GanError, match=phrase) as refused:
        load_checkpoint(path)
    assert time.monotonic() - started < 5
    assert "not a valid gan checkpoint" in str(refused.value)


def test_dense_tensors_of_any_layout_pass_and_views_that_repeat_memory_do_not():
    from gan.checkpoint_checks import tensor_problem

    x = torch.arange(24.0).reshape(2, 3, 4)
    for fine in (x, x.permute(2, 0, 1), x.reshape(1, 2, 3, 4).to(memory_format=torch.channels_last),
                 x[:, :0], x[1], torch.tensor(3.0)):  # fmt: skip
        assert tensor_problem(fine) is None
    overlapping = torch.arange(8.0).as_strided((4, 3), (1, 1))  # rows share elements
    for wrong in (x[:, :1].expand(2, 100, 4), overlapping, x[:, ::2]):
        assert "not dense" in tensor_problem(wrong)


def test_a_checkpoint_nested_beyond_the_recursion_limit_is_one_sentence(tmp_path):
    base = with_false_digest({**mlp_state(), "extra": "MARKER"}, tmp_path / "base.pt")
    path = nested_pickle(base, tmp_path / "deep.pt", 100_000)
    with pytest.raises(GanError, match="nests values more than 32 deep"):
        load_checkpoint(path)


def test_a_checkpoint_of_shared_references_is_refused_at_once_not_walked(tmp_path):
    """1 KB of pickle, 8^24 paths: e65e87f's digest walked them all (a hang)."""
    path = with_false_digest(_edited(mlp_state(), _dag), tmp_path / "dag.pt")
    started = time.monotonic()
    done = run_gan("sample", path, "--device", "cpu", cwd=tmp_path, timeout=90)
    assert done.returncode == 1, done.stderr
    assert "over and over" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "assets").exists()


def _edited(state: dict, edit) -> dict:
    edit(state)
    return state


def test_a_checkpoint_written_as_e65e87f_wrote_them_still_verifies(tmp_path):
    """The digest is defined as before for every valid file, and the checks made before it
    accept what gan wrote: this digest is what e65e87f's content_digest gives (shared RNG
    states, a channels-last tensor, integer keys, tuples)."""
    rng = {"torch": torch.arange(8, dtype=torch.uint8), "cuda": [], "python": (3, (1, 2), None)}
    state = {
        "format_version": 1, "step": 3, "run_name": "r",
        "model": {"name": "mlp", "image_shape": [1, 8, 8], "latent_dim": 100},
        "generator": {"w": torch.arange(24.0).reshape(1, 2, 3, 4).to(
            memory_format=torch.channels_last)},
        "config": {"train": {"max_steps": 3}},
        "opt_g": {"state": {0: {"step": torch.tensor(3.0)}},
                  "param_groups": [{"betas": (0.5, 0.9)}]},
        "rng": rng, "rng_ranks": [rng], "best_fid": None, "world_size": 1,
    }  # fmt: skip
    digest = "sha256:0caf2b4fbab0eea3aa129c2055136f08de815c3e1f2f15b21bd05e31ebbd8007"
    assert content_digest(state) == digest
    torch.save({**state, DIGEST: digest}, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")  # format 1, each part now under its name
    assert loaded["loop"]["rng_ranks"][0]["python"] == (3, (1, 2), None)


def test_a_zip_that_the_zip_reader_cannot_handle_is_one_sentence(tmp_path):
    path = tmp_path / "newer-zip.pt"
    save_atomic(mlp_state(), path)
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the central directory's first record
    data[entry + 6 : entry + 8] = (72).to_bytes(2, "little")  # "needs zip version 7.2"
    path.write_bytes(bytes(data))
    with pytest.raises(GanError, match=r"truncated or corrupt \(NotImplementedError"):
        load_checkpoint(path)


def test_load_generator_refuses_a_model_the_machine_cannot_hold_before_building_it(
    tmp_path, monkeypatch
):
    import gan
    import gan.outputs.generator as generator_module

    path = tmp_path / "small.pt"
    save_atomic(mlp_state(), path)  # G and D of an 8x8 mlp: 3.8 MB
    built: list[str] = []
    real_build = generator_module.build_models
    monkeypatch.setattr(generator_module, "build_models",
                        lambda *a, **k: built.append(a[0]) or real_build(*a, **k))  # fmt: skip
    small_machine(monkeypatch, 4 * MB)
    with pytest.raises(GanError, match=r"need 3\.76 MB of memory, more than half of"):
        gan.load_generator(path, device="cpu")
    outcome = cli_in("sample", path, "--device", "cpu", cwd=tmp_path)
    expect_error(outcome, 1, "load it on a machine with more memory")
    assert not built and not (tmp_path / "assets").exists()
    small_machine(monkeypatch, 8 * MB)
    assert gan.load_generator(path, device="cpu").sample(2).shape == (2, 8, 8, 1)


def test_evaluate_refuses_scoring_the_machine_cannot_hold_before_drawing_a_sample(
    tmp_path, monkeypatch
):
    """`--metrics nn` keeps every sample's pixels, pr a distance matrix of the larger set,
    every metric the samples' features: their memory is checked before a sample is drawn,
    one sentence naming --num-samples."""
    import gan.metrics.evaluate as scoring

    path = save_atomic(mlp_state((1, 28, 28)), tmp_path / "mnist.pt")
    drawn: list[int] = []
    real_draw = scoring.fake_features
    monkeypatch.setattr(
        scoring, "fake_features", lambda *a, **k: drawn.append(a[1]) or real_draw(*a, **k)
    )
    small_machine(monkeypatch, 256 * MB)  # 100,000 samples of 28x28 pixels: 470 MB held
    args = ("evaluate", path, "--data", MNIST_1K, "--device", "cpu", "--metrics")
    outcome = cli_in(*args, "nn", "--num-samples", "100000", cwd=tmp_path)
    expect_error(
        outcome, 1, "--num-samples 100,000 with --metrics nn would hold", "smaller --num-samples"
    )
    outcome = cli_in(*args, "pr", "--num-samples", "20000", cwd=tmp_path)  # a 1.6 GB matrix
    expect_error(outcome, 1, "--num-samples 20,000 with --metrics pr would hold")
    assert not drawn
    assert cli_in(*args, "fid,nn", "--num-samples", "16", cwd=tmp_path).code == 0
    assert drawn == [16]


def test_resume_auto_falls_back_past_a_checkpoint_that_fails_in_any_way(tmp_path, monkeypatch):
    from gan.runs import resume

    run = tmp_path / "checkpoints" / "r"
    for step in (1, 2):
        save_atomic(mlp_state(step=step), step_path(run, step))
    # step 3: a config holding an integer beyond any float (e65e87f: an OverflowError)
    save_atomic(mlp_state(step=3, optim={"lr_g": 10**400}), step_path(run, 3))
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    real_load = resume.load_checkpoint

    def failing(path):  # step 2: whatever a damaged file provokes
        if path.name == "step-0000002.pt":
            raise RecursionError("maximum recursion depth exceeded")
        return real_load(path)

    monkeypatch.setattr(resume, "load_checkpoint", failing)
    try:
        found = resume.find_resume(tmp_path, "r", "auto")
    finally:
        logger.remove(sink)
    assert found.path.name == "step-0000001.pt" and found.state["step"] == 1
    assert "step-0000003.pt" in warnings[0] and "beyond any value" in warnings[0]
    assert "step-0000002.pt" in warnings[1] and "RecursionError" in warnings[1]


# ---- 7. every parser of a user's file or keyword: one sentence ----------------------------------


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("[train]\nmax_steps = 1" + "0" * 400 + "\n", "an integer of about 401 digits"),
        ("[optim]\nlr_g = 1" + "0" * 400 + "\n", "an integer of about 401 digits"),
        ("[train]\nseed = 1" + "0" * 5000 + "\n", "cannot be read"),
        ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "nests tables or lists too deeply"),
        ("[data]\nimage_size = [1, 8192]\n", "at most 4096 pixels a side"),
    ],
    ids=["int-400-digits", "float-option-as-huge-int", "int-5000-digits", "nested", "side"],
)
def test_a_config_file_with_values_beyond_reason_is_one_sentence(tmp_path, text, phrase):
    config = tmp_path / "run.toml"
    config.write_text(text)
    outcome = cli_in("train", "--config", config, "--workdir", tmp_path / "w", cwd=tmp_path)
    expect_error(outcome, 1, phrase)
    assert not (tmp_path / "w").exists()


def test_train_keywords_beyond_reason_are_one_sentence(tmp_path, monkeypatch):
    import gan

    monkeypatch.chdir(tmp_path)
    for keywords, phrase in [
        ({"lr_g": 10**400}, "lr_g: must be a finite number, got an integer of about 401"),
        ({"max_steps": 10**5000}, "an integer of about 5,001 digits"),
        ({"image_size": [[[[1]]]]}, "is not of the form HxW"),
        ({"resume": 5}, "resume=5 is not auto"),
    ]:
        with pytest.raises(GanError, match=phrase) as refused:
            gan.train(dataset="mnist", data=str(MNIST_1K), **keywords)
        assert "\n" not in str(refused.value) and len(str(refused.value)) < 200
    assert not list(tmp_path.iterdir())


def test_cache_files_nested_past_the_stack_are_read_as_damaged(s3):
    from gan.data.s3_cache import MANIFEST

    s3.bucket("nest")
    s3.put_many("nest", "mri", pngs(4))
    first = load("mri", "s3://nest/mri/", (8, 8))
    deep = "[" * 100_000 + "]" * 100_000
    (s3.cache_dir / "nest" / MANIFEST).write_text(deep)  # read as empty: fetched again
    for decoded in (s3.cache_dir / ".decoded").glob("*.npz"):
        decoded.unlink()
    again = load("mri", "s3://nest/mri/", (8, 8))
    assert torch.equal(again.images, first.images) and again.extra["s3_downloaded"] == 4


# ---- 3. bounded totals ------------------------------------------------------------------------


def test_a_volume_of_many_thin_slices_is_skipped_before_they_are_made(tmp_path, skipped):
    rng = np.random.default_rng(0)
    thin = rng.integers(1, 255, (2, 2, 5000), dtype=np.uint8)  # 20 KB: 5,000 slices of 200x160
    nibabel.save(nibabel.Nifti1Image(thin, np.eye(4)), str(tmp_path / "thin.nii.gz"))
    assert (tmp_path / "thin.nii.gz").stat().st_size < 64 * 1024
    nibabel.save(nibabel.Nifti1Image(thin[:, :, :40], np.eye(4)), str(tmp_path / "ok.nii.gz"))
    with peak_memory() as peak:
        data = load("mri", tmp_path, (200, 160))
    assert len(data.images) == 40 and data.extra["skipped_files"] == 1
    assert "thin.nii.gz" in skipped[0] and "slices; the limit is 4,096" in skipped[0]
    assert peak[0] < 16 * MB  # 5,000 slices of 200x160 would be 160 MB


def test_volumes_that_add_up_past_the_memory_stop_the_decoding_in_one_sentence(
    tmp_path, monkeypatch
):
    rng = np.random.default_rng(0)
    for i in range(12):  # 300 slices of 200x160 each: 9.6 MB a file, 115 MB in all
        volume = rng.integers(1, 255, (4, 4, 300), dtype=np.uint8)
        nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), str(tmp_path / f"v{i:02}.nii.gz"))
    small_machine(monkeypatch, 128 * MB)  # a dataset may take 32 MB
    with pytest.raises(GanError, match=r"do not fit in memory \(.* images take .* decoded, more "
                       r"than the 33.6 MB a dataset may take") as refused:  # fmt: skip
        load("mri", tmp_path, (200, 160))
    assert "smaller --image-size" in str(refused.value)


def test_s3_objects_that_add_up_past_the_memory_are_one_sentence(s3, monkeypatch):
    s3.bucket("many")
    s3.put_many("many", "mri", pngs(8))
    small_machine(monkeypatch, 96 * 1024)  # 8 slices of 64x64: 32 KB, over the 24 KB allowed
    with pytest.raises(GanError, match=r"The images of s3://many/mri/ do not fit in memory"):
        load("mri", "s3://many/mri/", (64, 64))
    assert not list((s3.cache_dir / ".decoded").glob("*.npz"))


@pytest.mark.parametrize("dataset", ["folder", "mri"])
def test_a_data_folder_nested_past_the_recursion_limit_is_walked_its_depths_skipped(
    tmp_path, nest, dataset
):
    """Walked without recursion (`gan.walk`): folders deeper than MAX_DATA_DEPTH are
    skipped, in one warning; the images above them load."""
    root = tmp_path / "images"
    root.mkdir()
    for name, data in pngs(3).items():
        (root / name).write_bytes(data)
    bottom = nest(root, 1200)
    (bottom / "deep.png").write_bytes(pngs(1)["img-0000.png"])
    (root.joinpath(*["a"] * 64) / "kept.png").write_bytes(pngs(1)["img-0000.png"])
    done = cli_in("data", "info", "--dataset", dataset, "--data", root, "--json", cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["num_images"] == 4
    assert f"Skipped 1 folder(s) under {root} nested deeper than 64 levels" in done.stderr


def test_s3_keys_nested_deeper_than_a_dataset_may_be_are_refused_before_the_cache():
    from gan.data.s3_cache import refusals

    keys = ["a/" * 64 + "kept.png", "a/" * 65 + "deep.png", "a/" * 2000 + "deeper.png"]
    refused = refusals(Path("/cache"), "bucket", keys)
    assert set(refused) == set(keys[1:]) and "nested deeper than 64" in refused[keys[1]]


def test_a_folder_too_large_for_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    import gan.data.folder as folder

    for i in range(8):
        Image.new("RGB", (256, 256), (i, 2 * i, 3 * i)).save(tmp_path / f"{i}.png")
    decoded: list[Path] = []
    real_read = folder.read_image
    monkeypatch.setattr(folder, "read_image", lambda p, *a: decoded.append(p) or real_read(p, *a))
    small_machine(monkeypatch, 4 * MB)  # 8 x 196 KB = 1.6 MB, over the 1 MB a dataset may take
    with pytest.raises(GanError, match=r"at 256x256 \(their own size\) would not fit in memory"):
        load("folder", tmp_path)
    assert not decoded
    small_machine(monkeypatch, 8 * MB)
    assert tuple(load("folder", tmp_path).images.shape) == (8, 3, 256, 256)


def strips_tiff(width: int, height: int, strip: bytes) -> bytes:
    """A 16-bit grayscale zlib TIFF of one row per strip, every strip the same bytes."""
    count = height
    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 16), (259, 3, 1, 8),
            (262, 3, 1, 1), (273, 4, count, None), (277, 3, 1, 1), (278, 4, 1, 1),
            (279, 4, count, None)]  # fmt: skip
    offsets_at = 8 + 2 + 12 * len(tags) + 4
    counts_at = offsets_at + 4 * count
    data_at = counts_at + 4 * count
    ifd = struct.pack("<H", len(tags))
    for tag, kind, n, value in tags:
        value = offsets_at if tag == 273 else counts_at if tag == 279 else value
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, n) + packed
    arrays = struct.pack(f"<{count}I", *[data_at] * count)
    arrays += struct.pack(f"<{count}I", *[len(strip)] * count)
    return b"II*\0" + struct.pack("<I", 8) + ifd + bytes(4) + arrays + strip


def test_tiff_strips_that_each_inflate_to_a_page_are_skipped_at_the_first(tmp_path, skipped):
    from tests.s3_server import make_bps_dataset

    root = tmp_path / "bps"
    rows = make_bps_dataset(root, n=4)
    # 2048 rows of 4 KB, each strip inflating to the whole 8 MB page: 16 GB to inflate
    bomb = strips_tiff(2048, 2048, zlib.compress(bytes(8 * MB), 9))
    assert len(bomb) < 64 * 1024
    (root / rows[1]["filename"]).write_bytes(bomb)
    started = time.monotonic()
    with peak_memory() as peak:
        data = load("bps", root, (16, 16))
    assert time.monotonic() - started < 10
    assert len(data.images) == 3 and data.extra["skipped_files"] == 1
    assert "inflates past its 4,096 bytes" in skipped[0]
    assert peak[0] < 8 * MB


def packbits(data: bytes) -> bytes:
    """PackBits as an encoder writes it: literal runs of at most 128 bytes."""
    return b"".join(
        bytes([len(c) - 1]) + c for c in (data[i : i + 128] for i in range(0, len(data), 128))
    )


def tiff_8bit(
    width: int, strips: list[bytes], compression: int, at: list[int] | None = None
) -> bytes:
    """An 8-bit grayscale TIFF of one row a strip: the strips' bytes one after the other,
    or, with `at`, each strip at that index into them (strips that repeat)."""
    count = len(at or strips)
    tags = [(256, 4, 1, width), (257, 4, 1, count), (258, 3, 1, 8), (259, 3, 1, compression),
            (262, 3, 1, 1), (273, 4, count, None), (277, 3, 1, 1), (278, 4, 1, 1),
            (279, 4, count, None)]  # fmt: skip
    offsets_at = 8 + 2 + 12 * len(tags) + 4
    data_at = offsets_at + 8 * count
    starts = [data_at + sum(map(len, strips[:i])) for i in range(len(strips))]
    index = at or list(range(count))
    offsets, sizes = [starts[i] for i in index], [len(strips[i]) for i in index]
    ifd = struct.pack("<H", len(tags))
    for tag, kind, n, value in tags:
        value = offsets_at if tag == 273 else offsets_at + 4 * count if tag == 279 else value
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, n) + packed
    arrays = struct.pack(f"<{count}I", *offsets) + struct.pack(f"<{count}I", *sizes)
    return b"II*\0" + struct.pack("<I", 8) + ifd + bytes(4) + arrays + b"".join(strips)


ROW = bytes(range(100))  # one row of a 100-pixel-wide page
HOSTILE_TIFFS = {  # what each is, and the phrase of its refusal
    # every strip points at one blob that decodes to 128 times its size (the red team's)
    "packbits bomb": (lambda: tiff_8bit(100, [b"\x81\x00" * 2000], 32773, [0] * 100),
                      "stores 4,000 bytes"),
    "packbits decoding past its strip": (lambda: tiff_8bit(100, [b"\x81\x00" * 10] * 100, 32773),
                                         "inflates past its 100 bytes"),
    "packbits no-ops": (lambda: tiff_8bit(100, [b"\x80" * 50_000 + packbits(ROW)] * 4, 32773),
                        "more than its size needs"),
    "repeated strips": (lambda: tiff_8bit(100, [packbits(ROW)], 32773, [0] * 100), "repeat"),
    "strip past the end": (lambda: tiff_8bit(100, [ROW] * 100, 1)[:-50], "past the end"),
    "lzw": (lambda: tiff_8bit(100, [ROW] * 100, 5), "compression LZW cannot be bounded"),
}  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE_TIFFS)
def test_tiff_strips_of_any_codec_are_bounded_before_decoding(tmp_path, skipped, case):
    """A per-strip cap for every codec tifffile may use (PackBits too, which tifffile
    decodes in Python, a byte at a time), strips that neither overlap nor repeat, and
    codecs whose output cannot be capped refused: decoding costs at most the page."""
    from tests.s3_server import make_bps_dataset

    root = tmp_path / "bps"
    rows = make_bps_dataset(root, n=4)
    make, phrase = HOSTILE_TIFFS[case]
    (root / rows[1]["filename"]).write_bytes(make())
    (root / rows[2]["filename"]).write_bytes(tiff_8bit(100, [packbits(ROW)] * 100, 32773))
    started = time.monotonic()
    with peak_memory() as peak:
        data = load("bps", root, (16, 16))
    assert time.monotonic() - started < 10 and peak[0] < 8 * MB
    assert len(data.images) == 3 and data.extra["skipped_files"] == 1  # the PackBits one loads
    assert phrase in skipped[0], skipped


def test_a_model_that_cannot_fit_in_memory_is_one_sentence_before_the_data(tmp_path):
    started = time.monotonic()
    outcome = cli_in("train", "--data", MNIST_1K, "--image-size", "4096x4096", "--model", "mlp",
                     "--workdir", tmp_path / "w", cwd=tmp_path)  # fmt: skip
    expect_error(outcome, 1, "Model 'mlp' at 1x4096x4096 needs about", "for G and D with their",
                 "give a smaller --image-size or another --model")  # fmt: skip
    assert time.monotonic() - started < 20 and not (tmp_path / "w").exists()


def test_feature_maps_that_cannot_fit_are_one_sentence_not_an_allocation(tmp_path, monkeypatch):
    """dcgan's weights at 1024x1024 are small; one image's feature maps are 2.7 GB."""
    small_machine(monkeypatch, 16 << 30)
    outcome = cli_in("train", "--data", MNIST_1K, "--image-size", "1024x1024", "--model", "dcgan",
                     "--batch-size", "8", "--device", "cpu", "--workdir", tmp_path / "w",
                     cwd=tmp_path)  # fmt: skip
    expect_error(outcome, 1, "Model 'dcgan' at 1x1024x1024 needs about 43.5 GB",
                 "43.4 GB for the feature maps of a batch of 8",
                 "give a smaller --batch-size")  # fmt: skip
    assert not (tmp_path / "w").exists()
    small_machine(monkeypatch, 64 << 30)  # room for it: the plan lets it through to the data
    outcome = cli_in("train", "--data", MNIST_1K / "missing", "--image-size", "1024x1024",
                     "--model", "dcgan", "--batch-size", "8", "--device", "cpu",
                     "--workdir", tmp_path / "w", cwd=tmp_path)  # fmt: skip
    expect_error(outcome, 1, "does not exist")


def test_a_folder_whose_own_size_is_too_large_for_the_model_is_one_sentence(tmp_path, monkeypatch):
    images = tmp_path / "big"
    images.mkdir()
    for i in range(2):
        Image.new("RGB", (2048, 2048), (i, 0, 0)).save(images / f"{i}.png")
    small_machine(monkeypatch, 16 << 30)  # 16 GB: dcgan-proj's G at 2048x2048 alone is 14 GB
    outcome = cli_in("train", "--dataset", "folder", "--data", images, "--max-steps", "1",
                     "--workdir", tmp_path / "w", cwd=tmp_path)  # fmt: skip
    expect_error(outcome, 1, "Model 'dcgan-proj' at 3x2048x2048", "--image-size")
    assert not (tmp_path / "w").exists()


# ---- 4. one set of limits, at plan time and at load time --------------------------------------


def folder_of(root: Path, classes: dict[str, int], size: int = 8) -> Path:
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("L", (size, size), 40 * i + len(name) % 7).save(root / name / f"{i}.png")
    return root


def test_training_refuses_what_loading_would_refuse(tmp_path):
    data = folder_of(tmp_path / "data", {"a": 2, "b" * 201: 2})
    for args, code, phrase in [
        (["--image-size", "1x8192"], 2, "at most 4096 pixels a side"),
        (["--image-size", "8x4097"], 2, "at most 4096 pixels a side"),
        (["--conditional", "--image-size", "8x8"], 1, "longer than the 200 characters"),
    ]:
        outcome = cli_in("train", "--dataset", "folder", "--data", data, "--model", "mlp",
                         "--max-steps", "1", *args, "--workdir", tmp_path / "w",
                         cwd=tmp_path)  # fmt: skip
        expect_error(outcome, code, phrase)
    assert not (tmp_path / "w").exists()


def test_a_run_at_the_limits_trains_and_its_checkpoint_loads(tmp_path):
    import gan

    longest = "n" * 200
    data = folder_of(tmp_path / "data", {"a": 2, longest: 2})
    result = gan.train(dataset="folder", data=str(data), model="mlp", image_size="4x4096",
                       conditional=True, max_steps=1, batch_size=2, device="cpu",
                       workdir=str(tmp_path), run_name="edge")  # fmt: skip
    generator = gan.load_generator(result.checkpoint, device="cpu")
    assert generator.classes == ["a", longest] and generator.image_shape == (1, 4, 4096)
    assert generator.sample(1, label=longest, seed=1).shape == (1, 4, 4096, 1)


def test_the_plan_and_the_loader_agree_on_every_boundary(tmp_path):
    from types import SimpleNamespace

    from gan.checkpoint_checks import _model_problem
    from gan.config.values import MAX_CLASS_NAME, MAX_CLASSES, MAX_SIDE, parse_image_size
    from gan.training.checks import check_labels

    config = Config().replace({"model.conditional": True, "data.name": "folder"})
    model = {"name": "mlp", "latent_dim": 100}
    for classes in ([str(i) for i in range(MAX_CLASSES)], ["a", "n" * MAX_CLASS_NAME]):
        check_labels(config, SimpleNamespace(labels=torch.zeros(1), classes=classes, source="x"))
        assert _model_problem({**model, "image_shape": [1, 8, 8], "classes": classes}) is None
    for classes in ([str(i) for i in range(MAX_CLASSES + 1)], ["a", "n" * (MAX_CLASS_NAME + 1)]):
        with pytest.raises(GanError):
            check_labels(config, SimpleNamespace(labels=torch.zeros(1), classes=classes,
                                                 source="x"))  # fmt: skip
        assert _model_problem({**model, "image_shape": [1, 8, 8], "classes": classes})
    for side in (1, MAX_SIDE):
        assert parse_image_size(f"1x{side}") == (1, side)
        assert _model_problem({**model, "image_shape": [1, 1, side]}) is None
    with pytest.raises(ValueError):
        parse_image_size(f"1x{MAX_SIDE + 1}")
    assert _model_problem({**model, "image_shape": [1, 1, MAX_SIDE + 1]})


def test_images_resized_past_the_memory_are_one_sentence_before_resizing(monkeypatch):
    small_machine(monkeypatch, 8 * MB)  # 1,000 digits at 64x64: 4 MB, over the 2 MB allowed
    with pytest.raises(GanError, match=r"resized to 64x64 would not fit in memory .*--limit"):
        load("mnist", MNIST_1K, (64, 64))
    assert tuple(load("mnist", MNIST_1K, (32, 32)).images.shape) == (1000, 1, 32, 32)
