"""Config: options declared once, bounds on every path, config.toml, help from the registries."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gan.cli import app
from gan.config import FIELDS, Config, DataConfig, OptimConfig, TrainConfig, catalog
from gan.config.file import config_toml, read_config_file
from gan.config.options import option, section_fields
from gan.config.values import parse_image_size
from gan.errors import GanError
from gan.training.rules import resolve
from tests.conftest import MNIST_1K, run_cli

TINY = ["--data", str(MNIST_1K), "--model", "mlp", "--batch-size", "8", "--device", "cpu"]
TINY += ["--log-every", "1", "--sample-every", "1000", "--checkpoint-every", "1000"]


@pytest.mark.parametrize(
    ("text", "size"),
    [("28x28", (28, 28)), ("200x160", (200, 160)), ("64", (64, 64)), (" 8X4 ", (8, 4))],
)
def test_parse_image_size(text, size):
    assert parse_image_size(text) == size


@pytest.mark.parametrize("text", ["0x0", "abc", "28x", "x28", "-1x5", "28x28x3", "99999x99999"])
def test_parse_image_size_rejects(text):
    with pytest.raises(ValueError):
        parse_image_size(text)


def test_json_round_trip():
    config = Config(
        data=DataConfig(name="mri", source="x", image_size=(200, 160)),
        optim=OptimConfig(batch_size=7),
    )
    again = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_from_dict_ignores_unknown_keys():
    raw = Config().to_dict()
    raw["train"]["future_option"] = 1
    raw["extra_section"] = {}
    assert Config.from_dict(raw) == Config()


def test_sections_are_filled_by_name_only():
    with pytest.raises(TypeError):
        DataConfig("mri")  # type: ignore[misc]


def test_resolve_fills_dataset_defaults():
    mri = resolve(Config(data=DataConfig(name="mri")))
    assert mri.model.name == "fastgan" and mri.data.image_size == (200, 160)
    assert mri.train.epochs == catalog.DATASETS.get("mri").default_epochs
    mnist = resolve(Config(data=DataConfig(name="mnist"), train=TrainConfig(max_steps=5)))
    assert mnist.model.name == "mlp" and mnist.train.epochs is None


@pytest.mark.parametrize(
    ("config", "flag"),
    [
        (Config(optim=OptimConfig(batch_size=0)), "--batch-size"),
        (Config(optim=OptimConfig(accumulation_steps=0)), "--accumulation-steps"),
        (Config(optim=OptimConfig(lr_g=0)), "--lr-g"),
        (Config(train=TrainConfig(run_name="../escape")), "--run-name"),
        (Config(train=TrainConfig(epochs=0)), "--epochs"),
        (Config(train=TrainConfig(seed=2**64)), "--seed"),
        (Config(train=TrainConfig(precision="half")), "--precision"),
        (Config(data=DataConfig(split_fractions=(0.5, 0.5, 0.5))), "--split-fractions"),
    ],
)
def test_validate_applies_the_declared_bounds_to_library_callers(config, flag):
    with pytest.raises(GanError, match=flag):
        config.validate()


# ---- each option declared once ---------------------------------------------------------------


def test_every_integer_option_is_range_checked():
    ints = [f for f in FIELDS.values() if f.kind is int]
    assert len(ints) >= 12
    for f in ints:
        assert f.opt.min is not None and f.opt.max is not None and f.opt.max < 2**63, f.key


def test_an_integer_option_without_bounds_is_refused_at_declaration():
    @dataclasses.dataclass
    class Section:
        count: int = option(1, "A count.", min=1)

    with pytest.raises(TypeError, match="min and a max"):
        list(section_fields("x", Section))


def test_run_defining_options_are_data_on_their_fields():
    fixed = {f.flag for f in FIELDS.values() if f.opt.fixed}
    assert {"--dataset", "--model", "--batch-size", "--seed", "--image-size"} <= fixed
    assert not fixed & {
        "--max-steps",
        "--lr-g",
        "--device",
        "--data",
        "--time-limit",
        "--time-budget",
    }


def _parameters() -> dict[str, object]:
    import typer.main

    command = typer.main.get_command(app).commands["train"]
    return {p.name: p for p in command.params}


def test_every_config_field_is_a_train_option_and_nothing_else_is():
    params = _parameters()
    assert set(params) - {f.param for f in FIELDS.values()} == {
        "config",
        "resume",
        "nproc",
        "dry_run",
    }
    for f in FIELDS.values():
        assert f.flag in params[f.param].opts, f.key
        assert f.opt.help in params[f.param].help


def test_help_comes_from_the_registries():
    assert set(catalog.DATASETS.names()) == {"mnist", "mri", "folder", "bps"}
    dataset_help, model_help = FIELDS["data.name"].opt.help, FIELDS["model.name"].opt.help
    for name in catalog.DATASETS:
        entry = catalog.DATASETS.get(name)
        assert f"{name}: {entry.summary}" in dataset_help
        assert f"{name} -> {entry.default_model}" in model_help
    for name in catalog.MODELS:
        assert f"{name}: {catalog.MODELS.get(name).summary}" in model_help
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("--accumulation-steps", "dcgan-proj", "--config", "[1<=x<=65536]"):
        assert text in result.output


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom gan.cli import app\n"
        "for args in (['--help'], ['train', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---- the command line fills the config by name -----------------------------------------------


@pytest.fixture
def captured(monkeypatch):
    """Run `gan train ...` in-process up to the library call; keep what it was given."""
    import gan.training.run

    calls: list[tuple[Config, str | None, frozenset[str]]] = []

    def fake_train(config, resume=None, chosen=frozenset()):
        calls.append((config, resume, chosen))
        return gan.training.run.TrainResult(None, None, 0, 0.0, False)

    monkeypatch.setattr(gan.training.run, "train", fake_train)

    def run(*args: str | Path) -> tuple[Config, str | None, frozenset[str]]:
        result = CliRunner().invoke(app, ["train", *map(str, args)])
        assert result.exit_code == 0, result.output
        return calls[-1]

    return run


def test_flags_fill_the_config_by_name(captured):
    config, resume, chosen = captured(
        "--dataset", "mri", "--image-size", "64x32", "--lr-d", "0.001", "--seed", "7",
        "--dose", "0.3", "--dose", "1", "--hours", "4", "--split-fractions", "0.5,0.25,0.25",
        "--no-channels-last", "--compile", "--device", "CPU", "--resume", "auto",
    )  # fmt: skip
    assert config.data.name == "mri" and config.data.image_size == (64, 32)
    assert config.optim.lr_d == 0.001 and config.train.seed == 7
    assert config.data.dose == (0.3, 1.0) and config.data.hours == (4,)
    assert config.data.split_fractions == (0.5, 0.25, 0.25)
    assert config.train.channels_last is False and config.train.compile is True
    assert config.train.device == "cpu" and resume == "auto"
    assert config.optim.batch_size == OptimConfig().batch_size  # untouched: the default
    assert "optim.lr_d" in chosen and "optim.batch_size" not in chosen


def test_file_wins_over_defaults_and_flags_win_over_the_file(captured, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        '[optim]\nbatch_size = 16\nlr_g = 0.001\n[train]\nseed = 3\nprecision = "fp32"\n'
        "[data]\nimage_size = [32, 32]\nsplit_fractions = [0.6, 0.2, 0.2]\n"
    )
    config, _, chosen = captured("--config", path, "--seed", "9")
    assert config.optim.batch_size == 16 and config.optim.lr_g == 0.001
    assert config.train.seed == 9 and config.train.precision == "fp32"
    assert config.data.image_size == (32, 32) and config.data.split_fractions == (0.6, 0.2, 0.2)
    assert config.optim.lr_d == OptimConfig().lr_d
    assert {"optim.batch_size", "train.seed", "data.image_size"} <= chosen


def test_config_toml_round_trip(tmp_path):
    config = Config(
        data=DataConfig(name="bps", image_size=(64, 48), dose=(0.1, 0.3), hours=(4, 24)),
        optim=OptimConfig(batch_size=5, lr_g=3.3e-4),
        train=TrainConfig(max_steps=123, run_name="r", channels_last=False, time_limit=1.5),
    )
    text = config_toml(config)
    assert "eval_every" not in text and "epochs" not in text  # unset: left out
    path = tmp_path / "config.toml"
    path.write_text(text)
    assert Config().replace(read_config_file(path)) == config


BAD_FILES = [
    ("[train]\nsead = 1\n", "[train] sead", "did you mean [train] seed"),
    ("[trian]\nseed = 1\n", "'trian'", "[data]"),
    ('[train]\nseed = "one"\n', "[train] seed", "must be an integer"),
    ("[train]\nseed = 99999999999\n", "[train] seed", "not in the range 0<=x<=4294967295"),
    ("[train]\nseed = -1\n", "[train] seed", "not in the range"),
    ("[optim]\nlr_g = 0\n", "[optim] lr_g", "0<x<=10"),
    ("[optim]\nbatch_size = 1.5\n", "[optim] batch_size", "must be an integer"),
    ("[train]\ncompile = 1\n", "[train] compile", "true or false"),
    ('[data]\nimage_size = "big"\n', "[data] image_size", "HxW"),
    ("[data]\nhours = [4, -1]\n", "[data] hours", "-1 is not in the range"),
    ("[data]\nsplit_fractions = [0.5, 0.5]\n", "[data] split_fractions", "3"),
    ('[train]\nrun_name = "../x"\n', "[train] run_name", "letters"),
    ("seed = 1\n", "'seed'", "not a section"),
    ("[train\n", "not valid TOML", "config file"),
]


@pytest.mark.parametrize(("text", "where", "what"), BAD_FILES, ids=[b[1] for b in BAD_FILES])
def test_bad_config_file_is_one_sentence_naming_the_key(tmp_path, text, where, what):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run_cli("train", "--config", path, "--workdir", tmp_path / "w", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert where in line and what in line and line.endswith(".")
    assert not (tmp_path / "w").exists()


def test_missing_config_file(tmp_path):
    result = run_cli("train", "--config", tmp_path / "nope.toml", cwd=tmp_path)
    assert result.returncode == 1 and "Cannot read the config file" in result.stderr


@pytest.mark.parametrize("f", [f for f in FIELDS.values() if f.kind is int], ids=lambda f: f.flag)
def test_integer_ranges_on_the_command_line_and_in_a_file(tmp_path, f):
    too_big = str(int(f.opt.max) + 1)
    result = CliRunner().invoke(app, ["train", f.flag, too_big], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "not in the range" in result.stderr, result.stderr
    assert f.flag in result.stderr
    path = tmp_path / "c.toml"
    path.write_text(f"[{f.section}]\n{f.name} = {too_big if not f.many else [int(too_big)]}\n")
    result = run_cli("train", "--config", path, cwd=tmp_path)
    assert result.returncode == 1 and f"[{f.section}] {f.name}" in result.stderr


def test_huge_seed_is_a_usage_error_not_a_traceback():
    result = CliRunner().invoke(
        app, ["train", "--seed", "99999999999999999999999"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "not in the range 0<=x<=4294967295" in result.stderr


# ---- config.toml reproduces a run --------------------------------------------------------------


def _losses(workdir: Path, run: str) -> list[tuple]:
    lines = (workdir / "logs" / run / "history.jsonl").read_text().splitlines()
    keys = ("step", "d_loss", "g_loss", "d_real", "d_fake", "images_seen")
    return [tuple(json.loads(line)[k] for k in keys) for line in lines]


def test_config_toml_trains_the_run_again_bit_identically(tmp_path):
    first = run_cli("train", *TINY, "--max-steps", "12", "--lr-g", "3e-4", "--seed", "5",
                    "--run-name", "a", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    saved = tmp_path / "logs" / "a" / "config.toml"
    again = run_cli("train", "--config", saved, "--run-name", "b", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert _losses(tmp_path, "a") == _losses(tmp_path, "b")  # bit-identical, not close
    assert len(_losses(tmp_path, "b")) == 12
    text_a, text_b = saved.read_text(), (tmp_path / "logs" / "b" / "config.toml").read_text()
    assert text_a.replace('run_name = "a"', 'run_name = "b"') == text_b
    assert 'name = "mlp"' in text_a and "image_size" in text_a  # resolved defaults recorded


def test_a_run_stopped_by_its_time_limit_is_reproduced_up_to_its_last_step(tmp_path):
    # With adaptive augmentation (1,000 digits): its ramp follows the planned length, which
    # the record keeps (stop_at, not max_steps).
    first = run_cli("train", *TINY, "--augment-p", "auto", "--augment", "translation",
                    "--ada-target", "0.05", "--time-limit", "2", "--max-steps", "24000",
                    "--run-name", "t", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    steps = _losses(tmp_path, "t")[-1][0]
    assert 0 < steps < 24_000  # stopped by the limit, before the planned steps ran out
    saved = tmp_path / "logs" / "t" / "config.toml"
    text = saved.read_text()
    assert f"stop_at = {steps}\n" in text and f"max_steps = {steps}\n" not in text
    again = run_cli("train", "--config", saved, "--run-name", "u", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert _losses(tmp_path, "t") == _losses(tmp_path, "u")
    strengths = [json.loads(line).get("augment_p") for line in
                 (tmp_path / "logs" / "u" / "history.jsonl").open()]  # fmt: skip
    assert max(strengths) > 0  # the ramp was exercised, not only recorded


def test_resume_refuses_a_config_file_that_changes_the_run(tmp_path):
    first = run_cli("train", *TINY, "--max-steps", "2", "--run-name", "r", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    path = tmp_path / "other.toml"
    path.write_text("[optim]\nbatch_size = 4\n")
    result = run_cli("train", "--config", path, "--resume", "auto", "--run-name", "r",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "--batch-size 4 differs" in result.stderr


# ---- per-dataset defaults ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(catalog.DATASETS))
def test_every_dataset_default_is_a_valid_option_that_resolves(name):
    from gan.training.rules import apply_dataset_defaults

    spec = catalog.DATASETS.get(name)
    for key, value in spec.defaults:
        FIELDS[key].check(value)  # raises on a value out of its declared range
    config = apply_dataset_defaults(Config(data=DataConfig(name=name)), frozenset())
    resolved = resolve(config)
    assert resolved.model.name == spec.default_model
    for key, value in spec.defaults:
        assert resolved.get(key) == value, key


def test_mri_trains_fastgan_with_hinge_and_spectral_norm_by_default():
    from gan.training.rules import apply_dataset_defaults

    config = resolve(apply_dataset_defaults(Config(data=DataConfig(name="mri")), frozenset()))
    assert (config.model.name, config.optim.loss, config.model.spectral_norm) == (
        "fastgan",
        "hinge",
        True,
    )
    t = config.train  # its plan, stopped after three minutes on a slower machine
    assert (config.optim.batch_size, t.epochs, t.time_limit, t.time_budget) == (16, 146, 180, None)


def test_dataset_defaults_fill_only_what_the_user_left_unset(tmp_path, monkeypatch):
    import gan.training.run
    from gan.config import ModelConfig

    entry = catalog.DATASETS.get("mnist")
    own = (("optim.loss", "hinge"), ("optim.lr_g", 5e-4), ("train.ema_decay", 0.99))
    monkeypatch.setitem(catalog.DATASETS._items, "mnist", dataclasses.replace(entry, defaults=own))

    def record(run: str) -> dict:
        return json.loads((tmp_path / "logs" / run / "run.json").read_text())

    flags = [*TINY, "--max-steps", "1", "--workdir", tmp_path]
    assert run_cli("train", *flags, "--run-name", "a", cwd=tmp_path).returncode == 0
    a = record("a")
    assert (a["optim"]["loss"], a["optim"]["lr_g"], a["train"]["ema_decay"]) == (
        "hinge",
        5e-4,
        0.99,
    )
    # A flag wins, even one that names the global default.
    done = run_cli("train", *flags, "--loss", "ns", "--run-name", "b", cwd=tmp_path)
    assert done.returncode == 0 and record("b")["optim"]["loss"] == "ns"
    assert 'loss = "hinge"' in (tmp_path / "logs" / "a" / "config.toml").read_text()
    # Library callers: what differs from the declared default counts as chosen.
    config = Config(
        data=DataConfig(name="mnist", source=str(MNIST_1K)),
        model=ModelConfig(name="mlp"),
        optim=OptimConfig(batch_size=8, lr_g=3e-4),
        train=TrainConfig(max_steps=1, device="cpu", workdir=str(tmp_path), run_name="c"),
    )
    gan.training.run.train(config)
    assert (record("c")["optim"]["lr_g"], record("c")["optim"]["loss"]) == (3e-4, "hinge")
    # A resumed run keeps what it started with, whatever the dataset's defaults are now.
    monkeypatch.setitem(catalog.DATASETS._items, "mnist", entry)
    again = run_cli("train", "--resume", "auto", "--run-name", "a", "--max-steps", "2",
                    "--workdir", tmp_path, "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert record("a")["optim"]["loss"] == "hinge" and record("a")["train"]["ema_decay"] == 0.99


def test_help_names_the_per_dataset_defaults(monkeypatch):
    from gan.cli.options import _per_dataset

    entry = catalog.DATASETS.get("mri")
    monkeypatch.setitem(
        catalog.DATASETS._items,
        "mri",
        dataclasses.replace(
            entry,
            defaults=(
                ("optim.loss", "hinge"),
                ("model.spectral_norm", True),
                ("data.no_sign_request", False),
            ),
        ),
    )
    assert _per_dataset(FIELDS["optim.loss"]) == " Per dataset: mri hinge."
    # switches by the flag that sets them, as the user would type it
    assert _per_dataset(FIELDS["model.spectral_norm"]) == " Per dataset: mri --spectral-norm."
    assert _per_dataset(FIELDS["data.no_sign_request"]) == " Per dataset: mri --sign-request."
    assert _per_dataset(FIELDS["optim.beta1"]) == ""


def test_a_conditional_default_falls_back_when_the_data_has_no_labels(tmp_path, monkeypatch):
    import shutil

    entry = catalog.DATASETS.get("mnist")
    own = (("model.conditional", True),)
    monkeypatch.setitem(catalog.DATASETS._items, "mnist", dataclasses.replace(entry, defaults=own))
    unlabelled = tmp_path / "digits"
    unlabelled.mkdir()
    shutil.copy(MNIST_1K / "t10k-images-idx3-ubyte.gz", unlabelled)
    common = ["--dataset", "mnist", "--model", "mlp", "--device", "cpu", "--batch-size", "8",
              "--max-steps", "1", "--workdir", tmp_path]  # fmt: skip
    plain = run_cli("train", *common, "--data", unlabelled, "--run-name", "u", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "has no labels: training without --conditional" in plain.stderr
    labelled = run_cli("train", *common, "--data", MNIST_1K, "--run-name", "l", cwd=tmp_path)
    assert labelled.returncode == 0, labelled.stderr
    runs = {r: json.loads((tmp_path / "logs" / r / "run.json").read_text()) for r in "ul"}
    assert runs["u"]["model"].get("classes") is None
    assert runs["l"]["model"]["classes"] == list("0123456789")
    # Asked for by the user, it is still an error on data without labels.
    asked = run_cli("train", *common, "--data", unlabelled, "--conditional", "--run-name", "a",
                    cwd=tmp_path)  # fmt: skip
    assert asked.returncode == 1 and "--conditional needs" in asked.stderr
