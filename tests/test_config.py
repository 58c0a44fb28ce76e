"""Config: parsing, validation, JSON round trip, CLI help in step with the registries."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gan.cli import DATASET_HELP, MODEL_HELP, app
from gan.config import Config, DataConfig, OptimConfig, TrainConfig, parse_image_size
from gan.data import DATASETS
from gan.errors import GanError
from gan.models import MODELS
from gan.training import resolve


@pytest.mark.parametrize(
    ("text", "size"),
    [("28x28", (28, 28)), ("200x160", (200, 160)), ("64", (64, 64)), (" 8X4 ", (8, 4))],
)
def test_parse_image_size(text, size):
    assert parse_image_size(text) == size


@pytest.mark.parametrize("text", ["0x0", "abc", "28x", "x28", "-1x5", "28x28x3", "99999x99999"])
def test_parse_image_size_rejects(text):
    with pytest.raises(GanError):
        parse_image_size(text)


def test_json_round_trip():
    config = Config(data=DataConfig("mri", "x", (200, 160)), optim=OptimConfig(batch_size=7))
    again = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_from_dict_ignores_unknown_keys():
    raw = Config().to_dict()
    raw["train"]["future_option"] = 1
    raw["extra_section"] = {}
    assert Config.from_dict(raw) == Config()


def test_resolve_fills_dataset_defaults():
    mri = resolve(Config(data=DataConfig("mri")))
    assert mri.model.name == "mri" and mri.data.image_size == (200, 160)
    assert mri.train.epochs == DATASETS.get("mri").default_epochs
    mnist = resolve(Config(data=DataConfig("mnist"), train=TrainConfig(max_steps=5)))
    assert mnist.model.name == "dcgan-proj" and mnist.train.epochs is None


@pytest.mark.parametrize(
    "config",
    [
        Config(optim=OptimConfig(batch_size=0)),
        Config(optim=OptimConfig(accumulation_steps=0)),
        Config(optim=OptimConfig(lr_g=0)),
        Config(train=TrainConfig(run_name="../escape")),
        Config(train=TrainConfig(epochs=0)),
    ],
)
def test_validate_rejects_nonsense(config):
    with pytest.raises(GanError):
        config.validate()


def test_help_lists_exactly_the_registered_names():
    for name in DATASETS.names():
        assert name in DATASET_HELP
    for name in MODELS.names():
        assert name in MODEL_HELP
    for name, spec in DATASETS._items.items():
        assert f"{name} -> {spec.default_model}" in MODEL_HELP or name not in MODEL_HELP


def test_cli_help_is_available():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--accumulation-steps" in result.output and "dcgan-proj" in result.output
