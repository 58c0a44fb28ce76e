"""Files a user was handed: they run no code, and what they say about themselves is checked
before it chooses a path, a setting or an allocation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gan.checkpoint import load_checkpoint, save_atomic
from gan.errors import GanError
from gan.models.generate import truncated_normal
from tests.conftest import MNIST_1K, run_cli
from tests.test_bad_input import Payload, cli_in, expect_error


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A one-step MNIST checkpoint: checkpoints/last.pt of a workdir."""
    work = tmp_path_factory.mktemp("trained")
    done = run_cli("train", "--data", MNIST_1K, "--max-steps", "1", "--batch-size", "4",
                   "--conditional", "--device", "cpu", "--run-name", "r", "--workdir", work,
                   cwd=work)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return work / "checkpoints" / "r" / "step-0000001.pt"


def forged(trained: Path, folder: Path, edit) -> Path:
    """A copy of the checkpoint with `edit(state)` applied and a fresh, matching digest:
    the digest only proves the file is intact, not that its maker was honest."""
    state = load_checkpoint(trained)
    edit(state)
    path = folder / "handed.pt"
    save_atomic(state, path)
    return path


# ---- Inception weights -------------------------------------------------------------------------


def test_inception_weights_with_a_pickle_payload_run_nothing(trained, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    evil = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": Payload(marker)}, evil)
    outcome = cli_in("evaluate", trained, "--data", MNIST_1K, "--features", "inception",
                     "--features-weights", evil, "--num-samples", "8", "--device", "cpu",
                     cwd=tmp_path)  # fmt: skip
    expect_error(outcome, 1, "not loaded", "could run code")
    monkeypatch.setenv("GAN_INCEPTION_WEIGHTS", str(evil))
    outcome = cli_in("evaluate", trained, "--data", MNIST_1K, "--features", "inception",
                     "--num-samples", "8", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    expect_error(outcome, 1, "not loaded")
    outcome = cli_in("train", "--data", MNIST_1K, "--max-steps", "2", "--batch-size", "4",
                     "--device", "cpu", "--eval-every", "1", "--eval-features", "inception",
                     "--workdir", tmp_path, cwd=tmp_path)  # fmt: skip
    expect_error(outcome, 1, "not loaded")
    assert not marker.exists()


def test_inception_weights_read_as_tensors_build_the_network(tmp_path, caplog):
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    from gan.metrics.features import load_inception

    extractor = fidelity.FeatureExtractorInceptionV3
    with mock.patch.object(fidelity, "load_state_dict_from_url", return_value={}), \
            mock.patch.object(extractor, "load_state_dict"):  # fmt: skip
        net = extractor("inception-v3-compat", ["2048"], None)
    weights = {k: v.half() for k, v in net.state_dict().items()}  # not the published file
    path = tmp_path / "weights.pth"
    torch.save(weights, path)
    loaded = load_inception(str(path))
    first = "Conv2d_1a_3x3.conv.weight"
    assert loaded.extractor.state_dict()[first].equal(weights[first].float())
    assert loaded(torch.rand(2, 1, 28, 28)).shape == (2, 2048)


# ---- checkpoint metadata -------------------------------------------------------------------------


def _set(path: str, value):
    def edit(state):
        *parents, last = path.split(".")
        node = state
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "phrase"),
    [
        (_set("run_name", "../../outside"), "run name"),
        (_set("run_name", "/tmp/abs"), "run name"),
        (_set("model.image_shape", [1, 100_000, 100_000]), "image size"),
        (_set("model.image_shape", [1, 28]), "image shape"),
        (_set("model.name", "os.system"), "model"),
        (_set("model.latent_dim", 10**9), "stored options"),
        (_set("model.classes", [str(i) for i in range(20_000)]), "classes"),
        (_set("config.optim.lr_g", -1.0), "stored options"),
        (_set("config.data", "not a table"), "stored options"),
        (_set("step", -5), "step"),
        (_set("runtime.generator_ema", [1, 2, 3]), "generator_ema"),
    ],
    ids=[
        "climbing-name",
        "absolute-name",
        "huge-shape",
        "short-shape",
        "unknown-model",
        "huge-latent",
        "many-classes",
        "bad-option",
        "bad-section",
        "negative-step",
        "ema-not-table",
    ],  # fmt: skip
)
def test_a_checkpoint_that_lies_about_itself_is_refused(trained, tmp_path, edit, phrase):
    handed = forged(trained, tmp_path, edit)
    with pytest.raises(GanError, match=phrase):
        load_checkpoint(handed)
    before = sorted(tmp_path.parent.iterdir())
    outcome = cli_in("sample", handed, "--device", "cpu", cwd=tmp_path)
    expect_error(outcome, 1, "not a valid gan checkpoint")
    assert sorted(tmp_path.parent.iterdir()) == before  # nothing made beside the workdir
    assert not (tmp_path / "assets").exists()


def test_weights_that_do_not_fit_the_model_are_refused_before_it_is_built(trained, tmp_path):
    def swap(state):  # a large tensor in place of a small one: the shapes must match first
        first = next(iter(state["runtime"]["generator_ema"]))
        state["runtime"]["generator_ema"][first] = torch.zeros(2, 2)

    outcome = cli_in("sample", forged(trained, tmp_path, swap), "--device", "cpu", cwd=tmp_path)
    expect_error(outcome, 1, "does not match model 'mlp'")


def test_evaluate_takes_no_s3_cache_or_download_settings_from_a_checkpoint(
    trained, tmp_path, monkeypatch
):
    import gan.outputs.evaluate as evaluating

    def plant(state):
        state["config"]["data"] |= {"download": True, "cache_dir": str(tmp_path / "planted"),
                                    "no_sign_request": True, "s3_workers": 256,
                                    "no_cache": True}  # fmt: skip

    handed = forged(trained, tmp_path, plant)
    read = []  # what the data loader is handed
    real = evaluating.load_dataset
    monkeypatch.setattr(
        evaluating, "load_dataset", lambda config: read.append(config) or real(config)
    )
    outcome = cli_in("evaluate", handed, "--data", MNIST_1K, "--num-samples", "16", "--metrics",
                     "fid", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert outcome.code == 0, outcome.stderr
    (data,) = read  # this machine's settings, the checkpoint's images
    assert (data.download, data.cache_dir, data.no_sign_request, data.s3_workers,
            data.no_cache) == (False, None, False, 32, False)  # fmt: skip
    assert data.source == str(MNIST_1K) and data.name == "mnist" and data.image_size == (28, 28)


def test_export_and_sample_defaults_follow_the_folder_not_the_stored_name(trained, tmp_path):
    """A checkpoint lying in checkpoints/<run>/ belongs to <run>, whatever name it stores."""
    folder = tmp_path / "checkpoints" / "mine"
    folder.mkdir(parents=True)
    handed = forged(trained, folder, _set("run_name", "someone-else"))
    done = run_cli("sample", handed, "--device", "cpu", "--num", "4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "assets" / "mine" / "sample-0000001.png").is_file()
    assert not (tmp_path / "assets" / "someone-else").exists()
    done = run_cli("export", handed, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (folder / "generator-0000001.safetensors").is_file()


def test_a_checkpoint_whose_zip_entries_inflate_is_refused_before_torch_reads_it(trained, tmp_path):
    import zipfile

    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(trained) as good, zipfile.ZipFile(bomb, "w") as out:
        for entry in good.infolist():
            out.writestr(entry.filename, good.read(entry), zipfile.ZIP_DEFLATED)
        out.writestr("r/data/999", bytes(256 << 20), zipfile.ZIP_DEFLATED)  # 256 MB of zeros
    assert bomb.stat().st_size < 3 * trained.stat().st_size
    with pytest.raises(GanError, match="compressed entries"):
        load_checkpoint(bomb)


def test_a_fifo_is_refused_as_checkpoint_and_config_without_a_hang(tmp_path):
    import os

    from tests.conftest import run_gan

    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    done = run_gan("sample", fifo, "--device", "cpu", cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and "not a regular file" in done.stderr, done.stderr
    done = run_gan("train", "--config", fifo, cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and "not a regular file" in done.stderr, done.stderr
    huge = tmp_path / "huge.toml"
    huge.write_text("# " + "x" * (2 << 20) + "\n")
    outcome = cli_in("train", "--config", huge, cwd=tmp_path)
    expect_error(outcome, 1, "larger than 1024 KiB")


# ---- gan sample bounds ---------------------------------------------------------------------


def test_a_tiny_truncation_is_refused_and_the_sampler_always_ends():
    z = truncated_normal((4, 1000), 1e-6, torch.Generator().manual_seed(0), rounds=20)
    assert z.abs().max() <= 1e-6 and z.abs().max() > 0
    typical = truncated_normal((4, 1000), 1.0, torch.Generator().manual_seed(0))
    assert typical.abs().max() <= 1.0
    assert typical.std() == pytest.approx(0.54, abs=0.05)  # a normal truncated at +-1


@pytest.mark.parametrize(
    "args",
    [
        ["--truncation", "0.001"],
        ["--num", "100000", "--interpolate", "1000"],
        ["--interpolate", "1000", "--num", "101"],
        ["--label", "3", "--interpolate", "1000", "--num", "200"],
        ["--nrow", "100000"],
    ],
    ids=["tiny-truncation", "walks-x-steps", "walks-x-steps-small", "label", "nrow-per-class"],
)
def test_sample_options_that_ask_too_much_are_one_sentence(trained, tmp_path, args):
    out = tmp_path / "c" / "x.png"
    outcome = cli_in("sample", trained, *args, "--device", "cpu", "--out", out, cwd=tmp_path)
    expect_error(outcome, 1, "truncation" if "--truncation" in args else "more than gan sample")
    assert not (tmp_path / "c").exists()


def test_the_bound_counts_pixels_as_well_as_images():
    from gan.outputs.generator import MAX_VALUES, bound

    bound(100_000, (1, 28, 28))
    most = MAX_VALUES // (3 * 256 * 256)
    bound(most, (3, 256, 256))
    with pytest.raises(GanError, match=f"more than gan sample makes at once \\({most:,}\\)"):
        bound(most + 1, (3, 256, 256))
    assert math.prod((3, 256, 256)) * most <= MAX_VALUES


# ---- a run's own small files, hand-edited or foreign ------------------------------------------


def test_gan_runs_and_plot_history_read_foreign_run_files_without_a_traceback(tmp_path):
    logs = tmp_path / "logs"
    for run in ("a", "b", "c"):
        (logs / run).mkdir(parents=True)
    (logs / "a" / "run.json").write_text('{"total_steps": "x", "dataset": "y", "model": [1]}')
    (logs / "a" / "status.json").write_text('{"status": 5, "seconds": "x", "started": 7}')
    (logs / "a" / "history.jsonl").write_text(
        '{"step": "abc", "d_loss": "x"}\n[1, 2]\n{"step": 3, "d_loss": "x", "g_loss": 1.0}\n'
        '{"step": 4, "d_loss": 0.5, "g_loss": null, "fid": "bad"}\n'
    )
    (logs / "b" / "run.json").write_text("[1, 2]")
    (logs / "b" / "history.jsonl").write_text('[1]\n"x"\n')
    (logs / "c" / "eval-0000001.json").write_text('{"fid": "bad", "step": "x"}')
    listed = cli_in("runs", "--workdir", tmp_path, cwd=tmp_path)
    assert listed.code == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["RUN", "a", "b", "c"]
    assert listed.stdout.splitlines()[1].split()[4] == "4"  # the steps that are numbers
    plotted = cli_in("plot-history", logs / "a", cwd=tmp_path)
    assert plotted.code == 0, plotted.stderr
    assert (tmp_path / "assets" / "a" / "losses.png").is_file()
    expect_error(cli_in("plot-history", logs / "b", cwd=tmp_path), 1, "no logged steps")
