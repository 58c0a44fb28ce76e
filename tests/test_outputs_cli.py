"""The commands that read a run's outputs, through the CLI: `gan export` without --out,
`gan evaluate --metrics nn` and `--data` on a folder checkpoint, what `gan plot-history`
draws (read back from the figure), and `gan runs` on a folder without runs."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.checkpoint import load_checkpoint
from gan.outputs import plotting
from tests.conftest import MNIST_1K, error_lines, run_cli


# ---- gan export CKPT, no --out ----------------------------------------------------------
@pytest.fixture(scope="module")
def export_run(tmp_path_factory) -> Path:
    """A 4-step run with checkpoints at steps 2 and 4."""
    work = tmp_path_factory.mktemp("export-default")
    result = run_cli(
        "train", "--dataset", "mnist", "--data", MNIST_1K, "--device", "cpu", "--batch-size", "8",
        "--max-steps", "4", "--checkpoint-every", "2", "--sample-every", "1000",
        "--workdir", work, "--run-name", "r", cwd=work,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return work


def _export_default(checkpoint: Path | str, cwd: Path) -> tuple[Path, Path]:
    result = run_cli("export", checkpoint, cwd=cwd)
    assert result.returncode == 0, result.stderr
    path, sidecar = (p if p.is_absolute() else cwd / p for p in map(Path, result.stdout.split()))
    return path, sidecar


@pytest.mark.parametrize(
    ("given", "step", "where"),
    [("checkpoints/r/step-0000002.pt", 2, "workdir"), ("checkpoints/last.pt", 4, "elsewhere")],
)
def test_export_without_out_writes_the_ema_generator_beside_the_runs_checkpoints(
    export_run, tmp_path, given, step, where
):
    from safetensors import safe_open
    from safetensors.torch import load_file

    # a relative path from the workdir, or an absolute one from another folder: the file
    # goes beside the run's checkpoints either way, never into the current folder
    checkpoint = given if where == "workdir" else export_run / given
    cwd = export_run if where == "workdir" else tmp_path
    path, sidecar = _export_default(checkpoint, cwd)
    expected = export_run / "checkpoints" / "r" / f"generator-{step:07d}.safetensors"
    assert path.resolve() == expected.resolve() and expected.is_file()
    assert sidecar.resolve() == expected.with_name(expected.name + ".json").resolve()
    assert list(tmp_path.iterdir()) == []  # nothing written where the command ran

    state = load_checkpoint(export_run / given)
    assert state["step"] == step
    tensors = load_file(expected)
    ema, raw = state["runtime"]["generator_ema"], state["runtime"]["generator"]
    assert set(tensors) == set(ema)
    for name, tensor in tensors.items():
        assert tensor.dtype == ema[name].dtype and torch.equal(tensor, ema[name]), name
    # the moving average, not G itself (they differ after a few steps at decay 0.999)
    assert any(not torch.equal(tensors[n], raw[n]) for n in tensors)
    with safe_open(str(expected), "pt") as f:
        assert f.metadata()["format"] == "pt"

    meta = json.loads(sidecar.read_text())
    assert meta["format"] == "safetensors" and meta["file"] == expected.name
    assert meta["weights"] == "moving average of G" and meta["model"] == "mlp"
    assert meta["training"]["step"] == step and meta["training"]["run"] == "r"
    assert meta["image_shape"] == [1, 28, 28] and meta["classes"] == [str(d) for d in range(10)]
    assert meta["sha256"] == hashlib.sha256(expected.read_bytes()).hexdigest()


# ---- gan evaluate --metrics nn and --data, on a folder checkpoint ------------------------
def _write_pngs(folder: Path, count: int, size: tuple[int, int], mode: str, seed: int) -> Path:
    """Smooth random blobs (so they are not all equally far apart), as PNG files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(count):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, h / 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        pixels = (255 * np.clip(blob + 0.1 * rng.random((h, w)), 0, 1)).astype(np.uint8)
        if mode == "RGB":
            pixels = np.stack([pixels, pixels[::-1], pixels[:, ::-1]], axis=-1)
        Image.fromarray(pixels, mode=mode).save(folder / f"img-{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> Path:
    """A 2-step mlp run on 40 gray 16x16 PNGs (--dataset folder)."""
    work = tmp_path_factory.mktemp("evaluate-folder")
    _write_pngs(work / "train", 40, (16, 16), "L", seed=0)
    result = run_cli(
        "train", "--dataset", "folder", "--data", work / "train", "--model", "mlp",
        "--device", "cpu", "--batch-size", "8", "--max-steps", "2", "--sample-every", "1000",
        "--workdir", work, "--run-name", "f", cwd=work,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return work


def _evaluate(work: Path, *args) -> tuple[dict, str]:
    data = () if "--data" in args else ("--data", work / "train")  # the run's own images
    result = run_cli("evaluate", work / "checkpoints" / "last.pt", "--metrics", "nn",
                     "--num-samples", "16", "--device", "cpu", *data, *args, cwd=work)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stdout


NN_KEYS = {f"nn_{space}_{name}" for space in ("pixel", "feature")
           for name in ("median_ratio", "share_closer_than_closest_pair")}  # fmt: skip


def test_evaluate_nn_on_a_folder_checkpoint_prints_and_reports_the_copy_scores(
    folder_run, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder_run / "cache"))  # real-feature cache
    result, stdout = _evaluate(folder_run)
    assert {k for k in result if k.startswith("nn_")} == NN_KEYS
    assert not {"fid", "kid", "precision", "recall"} & set(result)  # only what was asked
    for key in NN_KEYS:
        assert math.isfinite(result[key]), key
        assert f"{key:>10}  {result[key]:.6g}" in stdout  # the human-readable lines too
    for space in ("pixel", "feature"):
        # a 2-step G draws noise, far from every training image: no copying
        assert result[f"nn_{space}_median_ratio"] > 0.8
        assert 0 <= result[f"nn_{space}_share_closer_than_closest_pair"] < 0.25
    assert result["num_real"] == 40 and result["num_samples"] == 16
    assert result["features"] == "random-conv" and result["step"] == 2 and result["run"] == "f"
    (report,) = (folder_run / "logs" / "f").glob("eval-0000002-random-conv-16-*.json")
    assert json.loads(report.read_text()) == result
    assert f"report  {report}" in stdout or f"report  {report.relative_to(folder_run)}" in stdout


def test_evaluate_data_reads_the_folder_it_is_given(folder_run, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder_run / "cache"))
    own, _ = _evaluate(folder_run)
    other = _write_pngs(folder_run / "other", 25, (16, 16), "L", seed=1)
    result, _ = _evaluate(folder_run, "--data", other)
    assert result["num_real"] == 25 and own["num_real"] == 40
    # the same samples (same seed) against other reals: other distances
    assert result["nn_pixel_median_ratio"] != own["nn_pixel_median_ratio"]
    # another size is read at the checkpoint's (--image-size defines a run, like training)
    larger = _write_pngs(folder_run / "larger", 10, (24, 24), "L", seed=3)
    assert _evaluate(folder_run, "--data", larger)[0]["num_real"] == 10
    rgb = _write_pngs(folder_run / "rgb", 10, (16, 16), "RGB", seed=2)
    wrong = run_cli("evaluate", folder_run / "checkpoints" / "last.pt", "--metrics", "nn",
                    "--num-samples", "16", "--device", "cpu", "--data", rgb,
                    cwd=folder_run)  # fmt: skip
    assert wrong.returncode == 1
    assert "The data has images of [3, 16, 16] but the model makes [1, 16, 16]" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    empty = folder_run / "empty"
    empty.mkdir()
    missing = run_cli("evaluate", folder_run / "checkpoints" / "last.pt", "--metrics", "nn",
                      "--device", "cpu", "--data", empty, cwd=folder_run)  # fmt: skip
    assert missing.returncode == 1 and len(error_lines(missing)) == 1
    assert "No image files" in missing.stderr and str(empty) in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr


# ---- gan plot-history: the data of the figure ----------------------------------------------
def _history(folder: Path, records: list[dict]) -> Path:
    path = folder / "logs" / "h" / "history.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last `window` points, fewer at the start."""
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1) : i + 1]
        out.append(sum(part) / len(part))
    return out


def _lines(fig) -> dict[str, tuple[list[float], list[float]]]:
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
        for ax in fig.axes
        for line in ax.get_lines()
    }


RECORDS = [
    {"step": 5 * (i + 1), "d_loss": 1.0 + 0.1 * i * (-1) ** i, "g_loss": 0.5 + 0.03 * i * i}
    for i in range(7)
]  # fmt: skip


def _figures_of_cli(monkeypatch, tmp_path, *args) -> list:
    """Run `gan plot-history ARGS` and keep the figures it saved."""
    figures = []
    real = plotting.history_figure

    def keep(*a, **k):
        figures.append(real(*a, **k))
        return figures[-1]

    monkeypatch.setattr(plotting, "history_figure", keep)
    result = run_cli("plot-history", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = Path(result.stdout.strip())
    assert (out if out.is_absolute() else tmp_path / out).stat().st_size > 0
    return figures


def test_plot_history_draws_the_losses_at_their_steps(tmp_path, monkeypatch):
    _history(tmp_path, [{"run": "h"}, *RECORDS])  # a line without a step is not a point
    (fig,) = _figures_of_cli(monkeypatch, tmp_path)
    lines = _lines(fig)
    assert set(lines) == {"D loss", "G loss"}  # no FID in this history, no raw curves
    steps = [r["step"] for r in RECORDS]
    assert lines["D loss"] == (steps, [r["d_loss"] for r in RECORDS])
    assert lines["G loss"] == (steps, [r["g_loss"] for r in RECORDS])
    assert fig.axes[0].get_title() == "h"


@pytest.mark.parametrize("window", [2, 3, 7, 50])  # 7: the whole history; 50: longer
def test_plot_history_smooth_is_the_trailing_moving_average(tmp_path, monkeypatch, window):
    _history(tmp_path, RECORDS)
    (fig,) = _figures_of_cli(monkeypatch, tmp_path, "logs/h", "--smooth", str(window))
    lines = _lines(fig)
    steps = [r["step"] for r in RECORDS]
    for name, key in (("D loss", "d_loss"), ("G loss", "g_loss")):
        values = [r[key] for r in RECORDS]
        x, y = lines[name]
        assert x == steps
        assert y == pytest.approx(_moving_average(values, window), rel=1e-12, abs=1e-12)
        assert y[0] == values[0]  # the first point is its own average
        assert lines[f"_{name} raw"] == (steps, values)  # the raw curve stays, faint
    if window >= len(RECORDS):  # the last point averages everything
        assert lines["D loss"][1][-1] == pytest.approx(np.mean([r["d_loss"] for r in RECORDS]))
    assert f"moving average over {window} logs" in fig.axes[0].get_title()


def test_plot_history_draws_fid_where_the_history_has_it(tmp_path, monkeypatch):
    records = [dict(r) for r in RECORDS]
    records[2]["fid"], records[5]["fid"] = 40.5, 12.25
    _history(tmp_path, records)
    (fig,) = _figures_of_cli(monkeypatch, tmp_path, "logs/h/history.jsonl", "--smooth", "2")
    lines = _lines(fig)
    assert lines["FID"] == ([15, 30], [40.5, 12.25])
    assert lines["D loss"][0] == [r["step"] for r in RECORDS]


# ---- gan runs on a folder without runs --------------------------------------------------
@pytest.mark.parametrize("layout", [(), ("checkpoints", "logs", "assets")])
def test_runs_on_a_folder_without_runs(tmp_path, layout):
    for name in layout:
        (tmp_path / name).mkdir()
    text = run_cli("runs", "--workdir", tmp_path, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert text.stdout.strip() == f"No runs under {tmp_path} (train one with gan train)."
    listed = run_cli("runs", "--workdir", tmp_path, "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    here = run_cli("runs", cwd=tmp_path)  # the default workdir is the current folder
    assert here.returncode == 0, here.stderr
    assert here.stdout.strip() == "No runs under . (train one with gan train)."
