"""Property-based: whatever values `train` and `sample` options get, the CLI answers cleanly.

Exit 0 (accepted), 1 (a GanError sentence) or 2 (a usage error), never a traceback.
For `train`, accepted values go as far as the resolved, validated config (model size
checks included) without loading data, so hundreds of cases run in seconds.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gan.cli import app
from gan.config import FIELDS
from gan.training import rules
from gan.training import run as training

runner = CliRunner()

weird_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
ints = st.one_of(
    st.integers(-(10**12), 10**12), st.sampled_from([0, -1, 1, 65536, 65537, 2**63])
).map(str)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["1e-4", "nan"])
)
sizes = st.one_of(
    st.tuples(st.integers(-5, 300), st.integers(-5, 300)).map(lambda t: f"{t[0]}x{t[1]}"),
    weird_text,
)
values = {
    "--batch-size": st.one_of(ints, weird_text),
    "--accumulation-steps": ints,
    "--epochs": ints,
    "--max-steps": ints,
    "--latent-dim": ints,
    "--lr-g": floats,
    "--lr-d": floats,
    "--ema-decay": floats,
    "--image-size": sizes,
    "--device": st.one_of(st.sampled_from(["cpu", "cuda", "cuda:7", "mps", "tpu", ""]), weird_text),
    "--model": st.one_of(st.sampled_from(["mlp", "dcgan", "mri", "fc-dcgan", "x"]), weird_text),
    "--dataset": st.one_of(st.sampled_from(["mnist", "mri", "folder", "imagenet"]), weird_text),
    "--run-name": weird_text,
}
# Every other option of `train`, by the kind its declaration gives.
_BY_KIND = {int: st.one_of(ints, weird_text), float: st.one_of(floats, weird_text), str: weird_text}
values.update(
    {
        f.flag: _BY_KIND.get(f.kind, weird_text)
        for f in FIELDS.values()
        if f.flag not in values and f.kind is not bool
    }
)

toml_values = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    weird_text,
    st.lists(st.integers(-5, 300), max_size=4),
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=4),
)


def assert_clean(result, allowed=(0, 1, 2)):
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"uncaught {type(result.exception).__name__}:\n{trace}")
    assert result.exit_code in allowed, result.output
    if result.exit_code == 1:
        assert "Error: " in result.output
        message = result.output.split("Error: ", 1)[1].strip()
        assert message.endswith(".") and "\n" not in message.strip()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    options=st.dictionaries(
        st.sampled_from(sorted(values)), st.none(), min_size=1, max_size=4
    ).flatmap(lambda keys: st.fixed_dictionaries({k: values[k] for k in keys}))
)
def test_train_options_never_crash(options, monkeypatch, tmp_path):
    monkeypatch.setattr(training, "train", lambda config, *a, **k: _resolve_only(config))
    args = ["train", "--workdir", str(tmp_path)]
    for flag, value in options.items():
        args += [flag, value]
    assert_clean(runner.invoke(app, args, env={"COLUMNS": "200"}))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    table=st.dictionaries(
        st.one_of(st.sampled_from(sorted(FIELDS)), st.just("train.nope"), st.just("x.seed")),
        toml_values,
        min_size=1,
        max_size=4,
    )
)
def test_config_files_never_crash(table, monkeypatch, tmp_path):
    import tomli_w

    monkeypatch.setattr(training, "train", lambda config, *a, **k: _resolve_only(config))
    sections: dict[str, dict] = {}
    for key, value in table.items():
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = value
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(sections))
    result = runner.invoke(app, ["train", "--config", str(path)], env={"COLUMNS": "200"})
    assert_clean(result, allowed=(0, 1))


def _resolve_only(config):
    rules.resolve(config)
    from gan.runs.folders import RunPaths

    return training.TrainResult("x", RunPaths(Path("."), "x"), 0, 0.0, False)


@pytest.fixture(scope="module")
def tiny_checkpoint(
    tmp_path_factory,
) -> Path:
    from tests.conftest import MNIST_1K, run_cli

    workdir = tmp_path_factory.mktemp("ckpt")
    result = run_cli("train", "--data", str(MNIST_1K), "--max-steps", "1", "--batch-size", "4",
                     "--device", "cpu", "--workdir", str(workdir), cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return workdir / "checkpoints" / "last.pt"


sample_values = {
    "--num": st.one_of(
        st.integers(-(10**9), 0), st.integers(1, 24), st.integers(100_001, 10**12)
    ).map(str),
    "--nrow": st.one_of(ints, weird_text),
    "--seed": st.one_of(ints, weird_text),
    "--format": st.one_of(st.sampled_from(["grid", "png", "npy", "gif"]), weird_text),
    "--device": st.sampled_from(["cpu", "cuda", "mps", "gpu", "cuda:1"]),
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(options=st.fixed_dictionaries({}, optional=sample_values))
def test_sample_options_never_crash(options, tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "o"
    args = ["sample", str(tiny_checkpoint), "--out", str(out)]
    for flag, value in options.items():
        args += [flag, value]
    assert_clean(runner.invoke(app, args, env={"COLUMNS": "200"}))
