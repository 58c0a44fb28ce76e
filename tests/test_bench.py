"""`gan bench`: GEMM peaks, per-model measurements in their own processes, the naive
baseline, the table and the JSON report (tiny budgets: correctness, not speed)."""

from __future__ import annotations

import json

import pytest
import torch

from gan import speed
from gan.bench import table
from gan.bench.peak import best_peaks, gemm_gflops, measure_peaks, supported
from tests.conftest import run_cli

CPU = torch.device("cpu")
RESULT_KEYS = {"model", "precision", "batch_size", "images_per_s", "gflops", "fraction_of_peak",
               "baseline_images_per_s", "speedup_vs_baseline", "peak_mem_mb"}  # fmt: skip


def test_gemm_peak_is_a_positive_rate_per_precision():
    assert gemm_gflops("fp32", 128, CPU, 0.05) > 0
    peaks = measure_peaks(["fp32"], CPU, 0.2)
    assert peaks["fp32"]["gflops"] > 0 and peaks["fp32"]["size"] in (512, 1024, 2048)


def test_emulated_formats_have_no_peak(monkeypatch):
    monkeypatch.setattr(speed, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert supported("fp32", CPU)
    assert not supported("bf16", CPU) and not supported("fp16", CPU)
    assert measure_peaks(["bf16"], CPU, 0.1) == {"bf16": {"gflops": None, "size": None}}
    monkeypatch.setattr(speed, "cpu_flags", lambda: frozenset({"avx512_bf16", "avx512_fp16"}))
    assert supported("bf16", CPU) and supported("fp16", CPU)


def test_best_peaks_keeps_the_faster_measurement_per_precision():
    first = {"fp32": {"gflops": 180.0, "size": 1024}, "bf16": {"gflops": None, "size": None}}
    last = {"fp32": {"gflops": 130.0, "size": 2048}, "bf16": {"gflops": None, "size": None}}
    assert best_peaks(first, last) == first
    assert best_peaks(last, first)["fp32"] == {"gflops": 180.0, "size": 1024}
    faster = {"fp32": {"gflops": 200.0, "size": 512}, "bf16": {"gflops": 400.0, "size": 512}}
    assert best_peaks(first, faster) == faster


def test_bench_end_to_end_writes_the_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    result = run_cli(
        "bench", "--models", "fc-dcgan", "--precision", "fp32,bf16", "--batch-size", "4",
        "--image-size", "16x16", "--seconds", "0.2", "--device", "cpu", "--json", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| model | precision | batch | images/s | GFLOP/s | fraction of peak |" in result.stdout
    report = json.loads(out.read_text())
    assert report["peak_gflops"]["fp32"] > 0
    # bf16 has a peak only where the CPU has bf16 instructions; emulated, the row has no fraction
    assert (report["peak_gflops"]["bf16"] is not None) is speed.cpu_has_native_bf16()
    for precision, peak in report["peak_gflops"].items():  # the better of the two measurements
        runs = [r for r in report["peak_gflops_runs"][precision] if r is not None]
        assert peak == (max(runs) if runs else None)
    rows = report["results"]
    assert [(r["model"], r["precision"]) for r in rows] == [
        ("fc-dcgan", "fp32"),
        ("fc-dcgan", "bf16"),
    ]
    for row in rows:
        assert row.keys() >= RESULT_KEYS, row
        assert row["batch_size"] == 4 and row["image_size"] == [16, 16]
        assert row["images_per_s"] > 0 and row["baseline_images_per_s"] > 0
        assert row["flops_per_image"] > 0 and row["peak_mem_mb"] > 50  # torch alone is more
        expected = row["images_per_s"] * row["flops_per_image"] / 1e9
        assert row["gflops"] == pytest.approx(expected, rel=1e-6)
        peak = report["peak_gflops"][row["precision"]]
        if peak is None:
            assert row["fraction_of_peak"] is None
        else:
            assert row["fraction_of_peak"] == pytest.approx(row["gflops"] / peak)
        assert row["speedup_vs_baseline"] == pytest.approx(
            row["images_per_s"] / row["baseline_images_per_s"]
        )
    # fp32 and bf16 count the same FLOPs: the arithmetic is the same, only its format differs
    assert rows[0]["flops_per_image"] == rows[1]["flops_per_image"]
    assert rows[0]["channels_last"] is speed.default_channels_last("fp32", CPU)
    assert rows[1]["channels_last"] is True
    emulated = result.stderr.count("bf16 on this CPU is emulated")
    warns = bool(speed.cpu_flags()) and not speed.cpu_has_native_bf16()
    assert emulated == (1 if warns else 0)  # relayed once, not once per row


def mlp_step_flops_per_image(pixels: int, accumulation: int, latent: int = 100) -> int:
    """FLOPs of one `gan train` step of the mlp pair per image, counted by hand: 2 per
    multiply-add of each Linear (as torch's FLOP counter counts a matmul; biases and
    activations are not counted), each backward matmul as its forward.

    Per micro-batch of B images: D's pass runs G forward (B), D forward and backward on
    reals and fakes (2B; D's first layer needs no input gradient: reals and detached
    fakes). G's pass runs D forward on the fakes (B) and backward for the inputs only (D's
    weights are frozen), then G backward (no input gradient for z). With one micro-batch
    G's pass reuses D's fakes; with K it runs G forward again."""
    g_layers = [(latent, 128), (128, 256), (256, 512), (512, 1024), (1024, pixels)]
    d_layers = [(pixels, 512), (512, 256), (256, 1)]
    g, d = sum(a * b for a, b in g_layers), sum(a * b for a, b in d_layers)
    g_first, d_first = g_layers[0][0] * g_layers[0][1], d_layers[0][0] * d_layers[0][1]
    d_pass = g + 2 * d + 2 * d + 2 * (d - d_first)  # G fwd; D fwd, weight and input grads
    g_pass = (g if accumulation > 1 else 0) + d + d + g + (g - g_first)
    return 2 * (d_pass + g_pass)


def test_bench_without_baseline_and_one_model_counts_the_flops_of_a_step(tmp_path):
    out = tmp_path / "bench.json"
    result = run_cli("bench", "--models", "mlp", "--precision", "fp32", "--image-size", "8x8",
                     "--batch-size", "4", "--accumulation-steps", "2", "--seconds", "0.1",
                     "--no-baseline", "--device", "cpu", "--json", out,
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = [line for line in result.stdout.splitlines() if line.startswith("| `mlp`")][0]
    assert row.split("|")[7].strip() == ""  # no baseline column value
    (measured,) = json.loads(out.read_text())["results"]
    assert measured["batch_size"] == 4 and measured["accumulation_steps"] == 2
    assert measured["flops_per_image"] == pytest.approx(mlp_step_flops_per_image(64, 2), rel=1e-9)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--models", "gpt"], 1, "Unknown model 'gpt'"),
        (["--models", ","], 2, "give at least one name"),
        (["--precision", "fp64"], 2, "'fp64' is not one of auto, fp32, bf16, fp16"),
        (["--seconds", "0"], 2, "--seconds"),
        (["--models", "mri", "--image-size", "12x12", "--seconds", "0.1"], 1, "mri"),
    ],
)
def test_bench_mistakes_are_one_sentence(tmp_path, args, code, message):
    result = run_cli("bench", "--device", "cpu", *args, cwd=tmp_path)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stdout + result.stderr


def test_table_shows_failures_and_missing_peaks():
    report = {
        "device": "cpu (2 threads)",
        "peak_gflops": {"fp32": 100.0, "bf16": None},
        "results": [
            {"model": "mlp", "precision": "bf16", "batch_size": 64, "accumulation_steps": 1,
             "images_per_s": 1000.0, "gflops": 10.0, "fraction_of_peak": None,
             "peak_mem_mb": 700.0},
            {"model": "mri", "batch_size": 32, "accumulation_steps": 8, "error": "out of memory"},
        ],
    }  # fmt: skip
    text = table(report)
    assert "GEMM peak GFLOP/s: fp32 100, bf16 n/a" in text
    assert "| `mlp` | bf16 | 64 | 1,000.0 | 10.0 | n/a |  |  | 700 |" in text
    assert "| `mri` | | 32 x 8 | error: out of memory |" in text
