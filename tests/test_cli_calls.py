"""Each command only translates its options and calls the library, by keyword (fastapi-cli's
style): what each one calls, with what (tests/test_config.py checks `gan train`'s config)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from gan.cli import app


class Calls:
    """A stand-in for library functions: records each call, returns what it is told."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch, self.made = monkeypatch, {}

    def replace(self, module, name: str, returns=None) -> None:
        def record(*args, **kwargs):
            self.made[name] = (args, kwargs)
            return returns

        self.monkeypatch.setattr(module, name, record)

    def __getitem__(self, name: str) -> tuple[tuple, dict]:
        return self.made[name]


@pytest.fixture
def calls(monkeypatch):
    return Calls(monkeypatch)


def invoke(*args) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_train_and_its_dry_run(calls, tmp_path):
    import gan.training.preview
    import gan.training.run

    calls.replace(
        gan.training.run, "train", gan.training.run.TrainResult(None, None, 0, 0.0, False)
    )
    invoke("train", "--max-steps", "5", "--resume", "auto", "--workdir", tmp_path)
    (config,), kwargs = calls["train"]
    assert config.train.max_steps == 5 and kwargs["resume"] == "auto"
    assert kwargs["chosen"].sources["train.max_steps"] == "flag"
    calls.replace(gan.training.preview, "preview", "the plan")
    assert invoke("train", "--max-steps", "5", "--dry-run").strip() == "the plan"
    (config,), kwargs = calls["preview"]
    assert config.train.max_steps == 5 and kwargs["resume"] is None


def test_sample(calls, tmp_path):
    import gan.outputs.sample

    calls.replace(gan.outputs.sample, "sample", tmp_path / "grid.png")
    out = invoke("sample", "c.pt", "--num", "9", "--format", "npy", "--label", "7", "--seed", 3)
    assert out.strip() == str(tmp_path / "grid.png")
    args, kwargs = calls["sample"]
    assert args == (Path("c.pt"),)
    assert kwargs == {
        "num": 9,
        "out": None,
        "nrow": None,
        "seed": 3,
        "fmt": "npy",
        "device": "auto",
        "truncation": None,
        "interpolate": None,
        "label": "7",
    }


def test_evaluate_scores_then_writes_the_report(calls, tmp_path):
    import gan.outputs.evaluate

    result = {"fid": 3.5, "features": "random-conv", "num_samples": 50, "num_real": 100}
    calls.replace(gan.outputs.evaluate, "evaluate", result)
    calls.replace(gan.outputs.evaluate, "write_report", tmp_path / "eval.json")
    out = invoke("evaluate", "c.pt", "--num-samples", "50", "--metrics", "fid", "--seed", 1,
                 "--limit", "all")  # fmt: skip
    assert json.loads(out.splitlines()[-1]) == result and str(tmp_path / "eval.json") in out
    args, kwargs = calls["evaluate"]
    assert args == (Path("c.pt"),)
    assert kwargs == {
        "data": None,
        "limit": "all",
        "num_samples": 50,
        "metrics": "fid",
        "features": None,
        "features_weights": None,
        "batch_size": 250,
        "seed": 1,
        "device": "auto",
        "report": False,
    }
    assert calls["write_report"] == ((Path("c.pt"), result), {})


def test_export(calls, tmp_path):
    import gan.outputs.export

    calls.replace(gan.outputs.export, "export", (tmp_path / "g.onnx", tmp_path / "g.json"))
    invoke("export", "c.pt", "--format", "onnx", "--out", tmp_path / "g.onnx")
    assert calls["export"] == ((Path("c.pt"),), {"fmt": "onnx", "out": tmp_path / "g.onnx"})


def test_plot_history(calls, tmp_path):
    from gan.outputs import plotting

    history = tmp_path / "logs" / "r" / "history.jsonl"
    calls.replace(plotting, "find_history", history)
    calls.replace(plotting, "plot_history", tmp_path / "losses.png")
    invoke("plot-history", "logs/r", "--out", tmp_path / "l.png", "--smooth", "5")
    assert calls["find_history"] == ((Path("logs/r"),), {"workdir": Path(".")})
    assert calls["plot_history"] == ((history,), {"out": tmp_path / "l.png", "smoothing": 5})


def test_runs(calls, tmp_path):
    from gan.runs import overview

    calls.replace(overview, "list_runs", [])
    assert "No runs under" in invoke("runs", "--workdir", tmp_path)
    assert calls["list_runs"] == ((tmp_path,), {})


def test_bench(calls):
    import gan.bench

    report = {"results": []}
    calls.replace(gan.bench, "run_bench", report)
    calls.replace(gan.bench, "table", "the table")
    invoke("bench", "--models", "mlp,dcgan", "--precision", "fp32", "--seconds", "0.5")
    (options,), _ = calls["run_bench"]
    assert options.models == ["mlp", "dcgan"] and options.precisions == ["fp32"]
    assert options.seconds == 0.5 and options.baseline is True


def test_data_info(calls):
    import gan.data

    data = SimpleNamespace(
        summary=lambda: {"name": "mri", "source": "s", "num_images": 3, "image_shape": [1, 8, 8]}
    )
    calls.replace(gan.data, "load_dataset", data)
    assert "3 images of 1x8x8" in invoke("data", "info", "--dataset", "mri", "--limit", "3")
    (config,), _ = calls["load_dataset"]
    assert config.name == "mri" and config.limit == 3


def test_data_preview(calls, tmp_path):
    import gan.outputs.data_preview

    shown = SimpleNamespace(path=tmp_path / "p.png", caption="4 images")
    calls.replace(gan.outputs.data_preview, "preview", shown)
    out = invoke("data", "preview", "--dataset", "folder", "--data", tmp_path, "--num", "4",
                 "--augment", "cutout", "--augment-p", "0.5", "--seed", "2")  # fmt: skip
    assert out.strip() == f"{tmp_path / 'p.png'}: 4 images"
    (data,), kwargs = calls["preview"]
    assert data.name == "folder" and data.source == str(tmp_path)
    assert kwargs == {
        "num": 4,
        "nrow": None,
        "out": None,
        "augment": "cutout",
        "augment_p": "0.5",
        "seed": 2,
    }
