"""Bad input at the command line: one readable sentence, the right exit code, no traceback.

Most cases run in-process through typer's CliRunner; a handful run the real CLI in a
subprocess (`python -m gan`) to check the whole path a user takes, exit status included.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gan.cli import app
from gan.data import DATASETS
from gan.models import MODELS
from tests.conftest import MNIST_1K, run_cli, run_gan

CUDA_MISSING = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
TINY = ("--max-steps", "2", "--batch-size", "8", "--device", "cpu")


# ---- helpers ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        """stderr with rich's panel borders removed and whitespace collapsed."""
        return " ".join(re.sub(r"[╭╮╰╯─│]", " ", self.stderr).split())


def cli(*args: str | Path) -> Outcome:
    """Run the CLI in-process; an exception other than a clean exit fails the test."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"gan {' '.join(map(str, args))} raised {result.exception!r} instead of "
            "printing an error"
        ) from result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def cli_in(*args: str | Path, cwd: Path) -> Outcome:
    """Run the CLI in-process from `cwd`."""
    proc: subprocess.CompletedProcess = run_cli(*map(str, args), cwd=cwd)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def real_cli(*args: str | Path, cwd: Path) -> Outcome:
    """Run the CLI as a user would: `python -m gan` in a subprocess."""
    proc: subprocess.CompletedProcess = run_gan(*map(str, args), cwd=cwd)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def expect_error(outcome: Outcome, code: int, *phrases: str) -> str:
    """Check the exit code, the absence of a traceback and the message; return the message."""
    both = outcome.stdout + outcome.stderr
    assert outcome.code == code, f"exit {outcome.code}, wanted {code}:\n{both}"
    assert "Traceback" not in outcome.stdout and "Traceback" not in outcome.stderr, both
    if code == 1:
        errors = [line for line in outcome.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, f"wanted one 'Error: ...' line:\n{outcome.stderr}"
        message = errors[0].strip()
        assert message.endswith("."), message  # a sentence
        assert 20 < len(message) < 400, message
        assert "\n" not in message
    else:  # a Typer/Click usage error
        message = outcome.text
        assert "Usage:" in outcome.stderr and ("Invalid value" in message or "option" in message)
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    return message


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under folder."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Commands that default to ./ (sample outputs, plot-history's logs/) stay in tmp_path."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A workdir with one real, tiny run named 'first' (2 steps on the bundled MNIST slice)."""
    work = tmp_path_factory.mktemp("trained")
    outcome = cli_in(
        "train", "--dataset", "mnist", "--data", MNIST_1K, "--workdir", work,
        "--run-name", "first", *TINY, cwd=work,
    )  # fmt: skip
    assert outcome.code == 0, outcome.stdout + outcome.stderr
    assert (work / "checkpoints" / "first" / "step-0000002.pt").is_file()
    return work


@pytest.fixture
def checkpoint(trained, tmp_path) -> Path:
    """A private copy of the real checkpoint, to damage."""
    return Path(shutil.copy(trained / "checkpoints" / "last.pt", tmp_path / "copy.pt"))


class Payload:
    """Unpickling this runs `touch marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


# ---- train: names and paths ------------------------------------------------------------------


def test_unknown_dataset_lists_the_valid_names(tmp_path):
    outcome = real_cli("train", "--dataset", "cifar", "--workdir", tmp_path / "w", cwd=tmp_path)
    message = expect_error(outcome, 1, "Unknown dataset 'cifar'")
    for name in DATASETS.names():
        assert name in message
    assert not (tmp_path / "w").exists()


def test_unknown_model_lists_the_valid_names(tmp_path):
    outcome = cli("train", "--model", "resnet", "--data", MNIST_1K, "--workdir", tmp_path / "w")
    message = expect_error(outcome, 1, "Unknown model 'resnet'")
    for name in MODELS.names():
        assert name in message
    assert not (tmp_path / "w").exists()


def test_data_path_that_does_not_exist(tmp_path):
    missing = tmp_path / "no-such-folder"
    outcome = cli("train", "--data", missing, "--workdir", tmp_path / "w", *TINY)
    expect_error(outcome, 1, str(missing), "does not exist")
    assert not (tmp_path / "w").exists()


def test_empty_folder_for_the_folder_dataset(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    outcome = cli("train", "--dataset", "folder", "--data", empty, "--workdir", tmp_path / "w")
    expect_error(outcome, 1, "No image files", str(empty))
    assert not (tmp_path / "w").exists()


def test_folder_with_only_a_corrupt_png_and_an_empty_jpg(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    (bad / "empty.jpg").write_bytes(b"")
    outcome = cli("train", "--dataset", "folder", "--data", bad, "--workdir", tmp_path / "w")
    expect_error(outcome, 1, "No readable images", str(bad))
    assert not (tmp_path / "w").exists()


def test_folder_dataset_without_data(tmp_path):
    outcome = cli("train", "--dataset", "folder", "--workdir", tmp_path / "w", *TINY)
    expect_error(outcome, 1, "--data")


def test_mnist_data_pointing_to_a_file(tmp_path):
    idx = tmp_path / "t10k-images-idx3-ubyte.gz"
    shutil.copy(MNIST_1K / idx.name, idx)
    outcome = cli("train", "--data", idx, "--workdir", tmp_path / "w", *TINY)
    expect_error(outcome, 1, str(idx), "is a file")
    assert not (tmp_path / "w").exists()


def test_mnist_folder_without_idx_files(tmp_path):
    outcome = cli("train", "--data", tmp_path, "--workdir", tmp_path / "w", *TINY)
    expect_error(outcome, 1, "No MNIST IDX files", str(tmp_path))


# ---- train: numbers --------------------------------------------------------------------------


USAGE_ERRORS = [
    (("--batch-size", "0"), ("--batch-size",)),
    (("--batch-size", "-3"), ("--batch-size",)),
    (("--batch-size", "abc"), ("--batch-size", "integer")),
    (("--epochs", "0"), ("--epochs",)),
    (("--accumulation-steps", "0"), ("--accumulation-steps",)),
    (("--latent-dim", "0"), ("--latent-dim",)),
    (("--image-size", "0x0"), ("--image-size", "at least 1")),
    (("--image-size", "abc"), ("--image-size", "HxW")),
    (("--image-size", "99999x99999"), ("--image-size", "too large")),
    (("--device", "nonsense"), ("--device", "nonsense")),
    (("--bogus-flag", "1"), ("--bogus-flag",)),
    # Bounds declared on the options: the command line checks them (exit 2).
    (("--lr-g", "0"), ("--lr-g", "0<x<=10")),
    (("--lr-d", "20"), ("--lr-d", "0<x<=10")),
    (("--run-name", "a/b"), ("--run-name", "'a/b'")),
    (("--run-name", ".."), ("--run-name",)),
    (("--seed", "99999999999999999999999"), ("--seed", "0<=x<=4294967295")),
    (("--max-steps", "10000000000000"), ("--max-steps", "not in the range")),
    (("--time-limit", "0"), ("--time-limit", "more than 0 s")),
    (("--time-limit", "5 minutes"), ("--time-limit", "a duration such as 300, 90s, 5m")),
    (("--time-budget", "-1"), ("--time-budget", "more than 0 s")),
    (("--split-fractions", "0.5,0.5,0.5"), ("--split-fractions", "sum to 1")),
    (("--precision", "fp64"), ("--precision", "fp64")),
]


@pytest.mark.parametrize(
    ("args", "phrases"), USAGE_ERRORS, ids=[" ".join(args) for args, _ in USAGE_ERRORS]
)
def test_usage_errors_exit_2(tmp_path, args, phrases):
    outcome = cli(
        "train", "--data", MNIST_1K, "--workdir", tmp_path / "w", "--device", "cpu", *args
    )
    expect_error(outcome, 2, *phrases)
    assert not (tmp_path / "w").exists()


INVALID_SETTINGS = [
    (("--image-size", "7x7", "--model", "dcgan-proj"), ("7x7", "--image-size")),
]


@pytest.mark.parametrize(
    ("args", "phrases"), INVALID_SETTINGS, ids=[" ".join(args) for args, _ in INVALID_SETTINGS]
)
def test_invalid_settings_exit_1(tmp_path, args, phrases):
    outcome = cli("train", "--data", MNIST_1K, "--workdir", tmp_path / "w", *TINY, *args)
    expect_error(outcome, 1, *phrases)
    assert not (tmp_path / "w").exists()


def test_image_size_too_small_for_mri_fails_before_any_work(tmp_path):
    work = tmp_path / "w"
    outcome = real_cli(
        "train", "--dataset", "mri", "--image-size", "7x7", "--workdir", work, *TINY, cwd=tmp_path
    )
    expect_error(outcome, 1, "7x7", "'fastgan'")  # mri's default model
    assert not (work / "checkpoints").exists() or not any((work / "checkpoints").rglob("*"))
    assert not work.exists() or not any(work.rglob("*"))
    assert "Data:" not in outcome.stderr  # nothing was loaded


@CUDA_MISSING
@pytest.mark.parametrize("device", ["cuda", "cuda:3"])
def test_device_cuda_without_a_gpu(tmp_path, device):
    work = tmp_path / "w"
    outcome = cli("train", "--data", MNIST_1K, "--workdir", work, *TINY, "--device", device)
    expect_error(outcome, 1, f"--device {device}", "no CUDA GPU")
    assert not work.exists()


# ---- train: where outputs go -----------------------------------------------------------------


def test_workdir_that_is_a_file(tmp_path):
    afile = tmp_path / "workdir.txt"
    afile.write_text("keep me\n")
    outcome = cli("train", "--data", MNIST_1K, "--workdir", afile, *TINY)
    expect_error(outcome, 1, str(afile), "is a file")
    assert afile.read_text() == "keep me\n"


def test_unwritable_workdir(tmp_path):
    # A folder below a regular file can never be created, even by root.
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    work = blocker / "work"
    outcome = cli("train", "--data", MNIST_1K, "--workdir", work, *TINY)
    expect_error(outcome, 1, "Cannot write", "writable --workdir")
    assert blocker.read_text() == "a file, not a folder\n"


def test_same_run_name_twice_fails_and_keeps_the_first_run(trained):
    before = snapshot(trained)
    assert "checkpoints/first/step-0000002.pt" in before
    assert "checkpoints/last.pt" in before
    outcome = cli_in(
        "train", "--dataset", "mnist", "--data", MNIST_1K, "--workdir", trained,
        "--run-name", "first", "--seed", "1", *TINY, cwd=trained,
    )  # fmt: skip
    expect_error(outcome, 1, "'first'", "already has outputs")
    assert snapshot(trained) == before  # byte-identical, nothing added or removed


# ---- sample ----------------------------------------------------------------------------------


def test_sample_missing_file(tmp_path):
    missing = tmp_path / "nope.pt"
    expect_error(cli("sample", missing, "--device", "cpu"), 1, str(missing), "does not exist")


def test_sample_on_a_folder(tmp_path):
    expect_error(cli("sample", tmp_path, "--device", "cpu"), 1, "is a folder")


def test_sample_truncated_checkpoint(checkpoint, tmp_path):
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    outcome = cli("sample", checkpoint, "--device", "cpu", "--out", tmp_path / "grid.png")
    expect_error(outcome, 1, str(checkpoint), "truncated or corrupt")
    assert not (tmp_path / "grid.png").exists()


def test_sample_zero_byte_checkpoint(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    expect_error(cli("sample", empty, "--device", "cpu"), 1, str(empty))


def test_sample_random_bytes(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(random.Random(0).randbytes(4096))
    expect_error(cli("sample", junk, "--device", "cpu"), 1, str(junk))
    assert not (tmp_path / "assets").exists()


@pytest.mark.parametrize(
    "content",
    [b"hello world\n", random.Random(2).randbytes(4096)],
    ids=["text-file", "random-bytes-seed-2"],
)
def test_sample_on_other_non_checkpoint_files(tmp_path, content):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(content)
    expect_error(cli("sample", junk, "--device", "cpu"), 1, str(junk))


def test_payload_is_live_when_unpickled_naively(tmp_path):
    """Control: the payload used below really does create its marker when unpickled."""
    marker = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(Payload(marker)))  # on purpose: a live payload
    assert marker.exists()


def test_sample_refuses_a_pickle_payload(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Payload(marker)))
    outcome = real_cli("sample", evil, "--device", "cpu", cwd=tmp_path)
    expect_error(outcome, 1, str(evil.name), "not a gan checkpoint")
    assert not marker.exists()
    assert not (tmp_path / "assets").exists()


def test_sample_refuses_a_torch_saved_payload(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    state = {"format_version": 1, "step": 1, "model": {}, "config": {}}
    torch.save({**state, "generator": Payload(marker)}, evil)
    expect_error(cli("sample", evil, "--device", "cpu"), 1, str(evil), "not loaded")
    assert not marker.exists()


def test_sample_on_a_torch_file_that_is_not_a_gan_checkpoint(tmp_path):
    other = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    expect_error(cli("sample", other, "--device", "cpu"), 1, "not a gan checkpoint")


def test_sample_on_a_checkpoint_from_a_newer_gan(tmp_path):
    future = tmp_path / "future.pt"
    torch.save(
        {"format_version": 99, "step": 1, "model": {}, "generator": {}, "config": {}}, future
    )
    expect_error(cli("sample", future, "--device", "cpu"), 1, "newer gan")


@pytest.mark.parametrize(
    ("args", "phrase"),
    [(("--num", "0"), "--num"), (("--format", "webm"), "--format"), (("--nrow", "x"), "--nrow")],
    ids=["num-0", "format-webm", "nrow-x"],
)
def test_sample_usage_errors(checkpoint, args, phrase):
    expect_error(cli("sample", checkpoint, "--device", "cpu", *args), 2, phrase)


# ---- plot-history ----------------------------------------------------------------------------


def test_plot_history_without_a_logs_folder(tmp_path):
    assert not (tmp_path / "logs").exists()
    expect_error(cli("plot-history"), 1, "No runs", "logs")
    assert not (tmp_path / "assets").exists()


def test_plot_history_on_a_missing_run(tmp_path):
    expect_error(cli("plot-history", tmp_path / "logs" / "nope"), 1, "does not exist")


def test_sample_on_a_checkpoint_whose_weights_belong_to_another_model(tmp_path):
    from gan.checkpoint import load_checkpoint, save_atomic

    work = tmp_path / "w"
    work.mkdir()
    made = cli_in(
        "train", "--data", MNIST_1K, "--max-steps", "1", "--batch-size", "4", "--device", "cpu",
        "--workdir", work, cwd=work,
    )  # fmt: skip
    assert made.code == 0, made.stderr
    state = load_checkpoint(work / "checkpoints" / "last.pt")
    state["model"]["name"] = "dcgan-proj"  # mlp weights under another model's name
    forged = save_atomic(state, tmp_path / "forged.pt")
    expect_error(cli("sample", forged, "--device", "cpu"), 1, "does not match model 'dcgan-proj'")


def test_training_into_a_folder_that_disappears_is_one_sentence(tmp_path):
    """Outputs that cannot be written mid-run (here: the assets folder replaced by a file)."""
    import shutil

    work = tmp_path / "w"
    (work / "assets" / "r").mkdir(parents=True)
    shutil.rmtree(work / "assets" / "r")
    (work / "assets" / "r").write_text("not a folder")
    result = cli_in(
        "train", "--data", MNIST_1K, "--max-steps", "2", "--batch-size", "4", "--device", "cpu",
        "--workdir", work, "--run-name", "r", cwd=work,
    )  # fmt: skip
    expect_error(result, 1)
