"""Checkpoint files: atomic writes, pruning, safe loading, format versions."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from gan import checkpoint
from gan.errors import GanError


def minimal_state(**extra):
    return {
        "format_version": checkpoint.FORMAT_VERSION,
        "step": 3,
        "model": {"name": "mlp", "image_shape": [1, 8, 8], "latent_dim": 4},
        "runtime": {"generator": {"w": torch.ones(2)}},
        "config": {"optim": {"batch_size": 2}},
        "loop": {"rng": {"python": (3, tuple(range(5)), None)}},
        **extra,
    }


def test_round_trip_with_weights_only(tmp_path):
    path = checkpoint.save_atomic(minimal_state(), tmp_path / "a.pt")
    state = checkpoint.load_checkpoint(path)
    assert state["step"] == 3 and torch.equal(state["runtime"]["generator"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary file left


def test_publish_makes_an_identical_alias_atomically(tmp_path):
    src = checkpoint.save_atomic(minimal_state(), tmp_path / "run" / "step-0000003.pt")
    alias = tmp_path / "last.pt"
    alias.write_bytes(b"old")
    checkpoint.publish(src, alias)
    assert alias.read_bytes() == src.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_prune_keeps_the_newest(tmp_path):
    for step in (5, 10, 100, 20):
        checkpoint.save_atomic(minimal_state(), checkpoint.step_path(tmp_path, step))
    removed = checkpoint.prune(tmp_path, 2)
    assert sorted(p.name for p in removed) == ["step-0000005.pt", "step-0000010.pt"]
    assert [s for s, _ in checkpoint.step_files(tmp_path)] == [20, 100]


def test_truncated_file_is_one_sentence(tmp_path):
    path = checkpoint.save_atomic(minimal_state(), tmp_path / "a.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(GanError, match="truncated or corrupt"):
        checkpoint.load_checkpoint(path)


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "step": 1, "x": Payload()}, path)
    with pytest.raises(GanError, match="other than tensors"):
        checkpoint.load_checkpoint(path)
    assert not marker.exists()

    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(GanError):
        checkpoint.load_checkpoint(raw)
    assert not marker.exists()


def test_newer_format_is_refused(tmp_path):
    path = checkpoint.save_atomic(minimal_state(format_version=99), tmp_path / "a.pt")
    with pytest.raises(GanError, match="newer gan"):
        checkpoint.load_checkpoint(path)


def test_a_tensor_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(1)}, path)
    with pytest.raises(GanError, match="not a gan checkpoint"):
        checkpoint.load_checkpoint(path)


def test_missing_and_directory(tmp_path):
    with pytest.raises(GanError, match="does not exist"):
        checkpoint.load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(GanError, match="is a folder"):
        checkpoint.load_checkpoint(tmp_path)


def test_unwritable_target_leaves_earlier_files(tmp_path):
    good = checkpoint.save_atomic(minimal_state(), tmp_path / "good.pt")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(GanError, match="Could not write checkpoint"):
        checkpoint.save_atomic(minimal_state(), blocker / "sub" / "a.pt")
    assert checkpoint.load_checkpoint(good)["step"] == 3


def test_a_format_1_checkpoint_loads_with_each_part_under_its_name():
    """e65e87f wrote one flat table (tests/data/reference, scripts/record_references.py);
    loaded, its digest still verifies and each part's keys are under the part's name."""
    from tests.conftest import ROOT

    old = ROOT / "tests" / "data" / "reference" / "tiny-step-0000020.pt"
    state = checkpoint.load_checkpoint(old)
    assert state["format_version"] == checkpoint.FORMAT_VERSION == 2
    assert {part: set(state[part]) for part in checkpoint.PARTS} == {
        part: set(keys) for part, keys in checkpoint.PARTS.items()
    }
    assert state["step"] == 20 and state["draws"]["images_seen"] == 20 * 16
    assert state["schedule"] == {"fitted": None, "ada_ramp_images": 1.0 * 40 * 16}
    assert not set(state) & {"generator", "rng", "fixed_latents", "best_fid", "time_budget"}
    assert checkpoint.generator_weights(state) is state["runtime"]["generator_ema"]
