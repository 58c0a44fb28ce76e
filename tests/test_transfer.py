"""Transfer for small data: --init-from (a new run from another run's weights), --freeze-d
(FreezeD) and --classes (some of a labelled dataset's classes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.checkpoint import load_checkpoint
from gan.config import DataConfig
from gan.config.catalog import D_BLOCKS, MODELS
from gan.data import load_dataset
from gan.errors import GanError
from gan.models import _on_meta, build_models
from gan.models.freeze import discriminator_blocks, freeze
from gan.training.runtime import add_spectral_norm
from tests.conftest import error_lines, run_cli
from tests.s3_server import make_bps_dataset

pytest_plugins = ["tests.s3_server"]

# tests/data/reference's tiny run: fc-dcgan, 16x16, latent 8, conditional on 10 digits
SOURCE = Path(__file__).parent / "data" / "reference" / "tiny-step-0000020.pt"
COMMON = ["--device", "cpu", "--batch-size", "8", "--log-every", "1", "--sample-every", "1000",
          "--augment", "none", "--lr-decay", "0", "--image-size", "16x16"]  # fmt: skip


def train(workdir: Path, mnist_dir: Path, *args: str, ok: bool = True):
    result = run_cli("train", "--data", mnist_dir, *COMMON, "--workdir", workdir, *args,
                     cwd=workdir)  # fmt: skip
    assert (result.returncode == 0) == ok, result.stderr
    return result


def history(workdir: Path, run: str) -> list[dict]:
    lines = (workdir / "logs" / run / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_init_from_starts_a_new_run_from_the_weights_and_freeze_d_keeps_the_first_blocks(
    tmp_path, mnist_dir
):
    ft = train(tmp_path, mnist_dir, "--init-from", SOURCE, "--freeze-d", "2", "--classes",
               "5,6,7", "--max-steps", "3", "--run-name", "ft")  # fmt: skip
    assert "FreezeD: D's first 2 blocks" in ft.stderr and "meant for --init-from" not in ft.stderr
    source, done = load_checkpoint(SOURCE), load_checkpoint(tmp_path / "checkpoints/ft/last.pt")
    before, after = source["runtime"]["discriminator"], done["runtime"]["discriminator"]
    # fc-dcgan's D under the projection wrapper: conv1, conv2 frozen; fc1, fc2 trained
    for key in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"):
        assert after[f"discriminator.{key}"].equal(before[f"discriminator.{key}"]), key
    assert not after["discriminator.fc1.weight"].equal(before["discriminator.fc1.weight"])
    # a new run: its own step count and options; the model's options came with the weights
    assert [r["step"] for r in history(tmp_path, "ft")] == [1, 2, 3]
    info = json.loads((tmp_path / "logs/ft/run.json").read_text())
    assert info["init_from"]["sha256"] == hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert info["init_from"]["step"] == 20
    assert info["sources"]["model.name"] == "init-from checkpoint"
    assert info["model"]["latent_dim"] == 8 and info["train"]["eval_every"] is None
    assert info["model"]["classes"] == ["5", "6", "7"]
    # 3 classes where the source had 10: the class embeddings start afresh, said in one line
    assert done["runtime"]["generator"]["embed.weight"].shape[0] == 3
    assert "tiny@20" in run_cli("runs", "--workdir", tmp_path, cwd=tmp_path).stdout
    # FreezeD without a source trains, and says what it freezes: D's initial weights
    alone = train(tmp_path, mnist_dir, "--model", "fc-dcgan", "--freeze-d", "1", "--max-steps",
                  "1", "--run-name", "alone")  # fmt: skip
    assert "(from their initial weights: FreezeD is meant for --init-from)" in alone.stderr


def test_a_fine_tuning_run_resumes_exactly_and_replays_from_its_config(tmp_path, mnist_dir):
    # Stopped at 3 and resumed to 6, then trained again from its config.toml in one go:
    # the same losses and weights (the replay is the run as a whole, from the same source).
    args = ["--init-from", SOURCE, "--freeze-d", "1", "--run-name", "r", "--checkpoint-every", "3"]
    train(tmp_path, mnist_dir, *args, "--max-steps", "3")
    resumed = train(tmp_path, mnist_dir, "--max-steps", "6", "--resume", "auto")
    assert "Resumed from" in resumed.stderr and "Initialised from" not in resumed.stderr
    # the resumed session's run.json (and its checkpoints) still say where the run started
    info = json.loads((tmp_path / "logs/r/run.json").read_text())
    assert info["resumed_at_step"] == 3 and info["init_from"]["run"] == "tiny"
    assert load_checkpoint(tmp_path / "checkpoints/r/last.pt")["init_from"]["step"] == 20
    train(tmp_path, mnist_dir, "--config", tmp_path / "logs/r/config.toml", "--run-name", "again")
    a, b = history(tmp_path, "r"), history(tmp_path, "again")
    assert [r["step"] for r in a] == list(range(1, 7))
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert [r[key] for r in a] == [r[key] for r in b], key  # bit-identical, not close
    last = [load_checkpoint(tmp_path / f"checkpoints/{run}/last.pt") for run in ("r", "again")]
    for name, tensor in last[0]["runtime"]["discriminator"].items():
        assert last[1]["runtime"]["discriminator"][name].equal(tensor), name


def test_a_replay_refuses_an_init_from_file_that_changed_since(tmp_path, mnist_dir):
    """config.toml records the source's SHA-256: replaying it after the file was replaced
    (last.pt of a newer run, a copy over it) is one sentence, not a run from other weights."""
    source = tmp_path / "source.pt"
    source.write_bytes(SOURCE.read_bytes())
    train(tmp_path, mnist_dir, "--init-from", source, "--run-name", "c", "--max-steps", "1")
    saved = tmp_path / "logs/c/config.toml"
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert f'init_sha256 = "{digest}"' in saved.read_text()
    source.write_bytes((tmp_path / "checkpoints/c/last.pt").read_bytes())  # another file now
    done = train(tmp_path, mnist_dir, "--config", saved, "--run-name", "d", ok=False)
    [line] = error_lines(done)
    assert "is not the checkpoint this run started from" in line
    assert not (tmp_path / "logs/d").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--init-from", "NOT_A_CHECKPOINT"], "--init-from: "),
        (["--init-sha256", "0" * 64], "--init-sha256 checks the file --init-from names"),
        (["--init-from", SOURCE, "--model", "dcgan-proj"], "--model 'dcgan-proj' differs"),
        (["--init-from", SOURCE, "--image-size", "28x28"], "give --image-size 16x16"),
        (["--model", "fc-dcgan", "--freeze-d", "4"], "give --freeze-d 0 to 3"),
        (["--classes", "5,x"], "has no class 'x'"),
    ],
)
def test_bad_values_are_one_sentence(tmp_path, mnist_dir, args, words):
    (tmp_path / "NOT_A_CHECKPOINT").write_text("just text\n")
    result = train(tmp_path, mnist_dir, *args, "--max-steps", "1", ok=False)
    assert result.returncode == 1 and len(error_lines(result)) == 1, result.stderr
    assert words in error_lines(result)[0]
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("classes", ["", ",,", " , "])
def test_classes_that_name_nothing_are_refused_not_a_traceback(tmp_path, classes):
    # typer hands an option whose callback returned () on as None: every class, silently
    result = run_cli("train", "--classes", classes, "--dry-run", cwd=tmp_path)
    assert result.returncode == 2 and "names no class" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "resgan", "--freeze-d", "5"], "give --freeze-d 0 to 4"),
        (["--dataset", "mri", "--classes", "a"], "'mri' has no labels, so --classes"),
    ],
)
def test_a_dry_run_refuses_what_the_options_alone_rule_out(tmp_path, args, words):
    result = run_cli("train", *args, "--dry-run", cwd=tmp_path)
    assert result.returncode == 1 and len(error_lines(result)) == 1, result.stderr
    assert words in result.stderr


def test_every_models_blocks_are_what_the_help_says():
    assert set(D_BLOCKS) == set(MODELS)
    for name, (count, _) in D_BLOCKS.items():
        _, discriminator = _on_meta(name, (1, 64, 64), 8, 0, 0)
        assert len(discriminator_blocks(discriminator)) == count, name


def test_frozen_blocks_get_no_gradient_and_adam_leaves_them(tmp_path):
    torch.manual_seed(0)
    _, discriminator = build_models("dcgan-proj", (1, 16, 16), 8, classes=3)
    freeze("dcgan-proj", discriminator, 2)
    add_spectral_norm(discriminator)  # after freezing, as the runtime builds it
    blocks = discriminator_blocks(discriminator)
    before = [[p.detach().clone() for p in block] for block in blocks]
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=0.1, foreach=True)
    for _ in range(2):
        optimizer.zero_grad()
        discriminator(torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 0])).sum().backward()
        optimizer.step()
    for index, (block, old) in enumerate(zip(blocks, before, strict=True)):
        frozen = index < 2
        assert all((p.grad is None) == frozen for p in block), index
        assert all(p.equal(o) == frozen for p, o in zip(block, old, strict=True)), index
    assert discriminator.embed.weight.grad is not None  # the class embedding trains


def test_classes_keep_their_names_and_are_numbered_in_the_datas_order(tmp_path, mnist_dir):
    data = load_dataset(DataConfig(source=str(mnist_dir), classes=("7", "5"), limit=30))
    assert data.classes == ("5", "7") and len(data.images) == 30
    assert set(data.labels.tolist()) == {0, 1}
    every = load_dataset(DataConfig(source=str(mnist_dir)))
    sevens = every.images[every.labels == 7][: int((data.labels == 1).sum())]
    assert data.images[data.labels == 1].equal(sevens)
    for folder in ("cats", "dogs", "owls"):
        (tmp_path / folder).mkdir()
        for i in range(2):
            Image.fromarray(np.full((8, 8), i * 9, np.uint8)).save(tmp_path / folder / f"{i}.png")
    folder = load_dataset(DataConfig(name="folder", source=str(tmp_path), classes=("owls", "cats")))
    assert folder.classes == ("cats", "owls") and len(folder.images) == 4
    with pytest.raises(GanError, match="has no class 'bats'"):
        load_dataset(DataConfig(name="folder", source=str(tmp_path), classes=("bats",)))


def test_classes_come_before_limit_on_s3_and_other_classes_are_not_fetched(s3):
    from tests.test_s3 import BPS_URI, bps_keys, codes, png

    s3.bucket("pets")
    files = {f"{kind}/{i}.png": png(np.full((8, 8), 10 * i + j, np.uint8))
             for j, kind in enumerate(("cats", "dogs")) for i in range(4)}  # fmt: skip
    s3.put_many("pets", "p/", files)
    dogs = load_dataset(
        DataConfig(name="folder", source="s3://pets/p/", classes=("dogs",), limit=3)
    )
    assert dogs.classes == ("dogs",) and len(dogs.images) == 3  # 3 dogs, not the first 3 files
    assert codes(dogs.images) == [(10 * i + 1) * 257 for i in range(3)]
    s3.bucket("bps-data")
    rows = make_bps_dataset(BPS_URI, n=12, s3=s3)
    s3.proxy.reset()
    fe = load_dataset(DataConfig(name="bps", source=BPS_URI, image_size=(16, 16), classes=("fe",)))
    wanted = [r for r in rows if r["particle_type"] == "Fe"]
    assert fe.classes == ("Fe",) and len(fe.images) == len(wanted)
    assert set(s3.proxy.object_gets()) == {"Microscopy/train/meta.csv"} | bps_keys(wanted)


def test_evaluate_scores_a_limited_run_against_all_of_its_classes(mnist_dir):
    """gan evaluate --limit: a run of --limit 30 on two digits, scored against every image
    of those digits (all), the first N, or as it trained (the default)."""
    from gan.config import Config
    from gan.outputs.evaluate import evaluation_data

    saved = Config.from_values({"data.classes": ("5", "7"), "data.limit": 30})
    source = str(mnist_dir)
    every = load_dataset(DataConfig(source=source))
    both = int(((every.labels == 5) | (every.labels == 7)).sum())
    assert both > 30
    for limit, count in ((None, 30), ("all", both), ("12", 12), (40, 40)):
        data = load_dataset(evaluation_data(saved, source, limit))
        assert len(data.images) == count and data.classes == ("5", "7")
    for bad in ("some", "0", "-3"):
        with pytest.raises(GanError, match="is not a number of images; give all"):
            evaluation_data(saved, source, bad)
