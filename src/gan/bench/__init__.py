"""`gan bench`: training speed of each model against this machine's GEMM peak and a naive loop.

In one run: the fp32 and bf16 (and fp16 when asked) matrix-multiply peaks, then for each
model and precision, in its own process, the Trainer's images/s, GFLOP/s (FLOPs counted by
torch.utils.flop_counter), peak memory, and the images/s of the naive baseline
(gan.bench.baseline) on the same model and batch; then the peaks once more, the better
of the two measurements giving each row's fraction of the peak in its precision.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from gan.atomic import atomic_write
from gan.errors import GanError

# The size each model trains at by default (its dataset's), and the batch the targets use.
IMAGE_SIZES = {"mri": (200, 160)}
BATCHES = {"mri": (32, 8)}  # (micro-batch, accumulation steps); others: (64, 1)


@dataclass
class BenchOptions:
    models: list[str]
    precisions: list[str] = field(default_factory=lambda: ["auto"])
    batch_size: int | None = None  # None: per model (BATCHES)
    accumulation_steps: int | None = None
    image_size: tuple[int, int] | None = None  # None: per model (IMAGE_SIZES)
    seconds: float = 10.0
    device: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    baseline: bool = True
    peak_seconds: float = 2.0


def _jobs(options: BenchOptions, precisions: list[str]) -> list[dict[str, Any]]:
    jobs = []
    for model in options.models:
        batch, accumulation = BATCHES.get(model, (64, 1))
        for precision in precisions:
            jobs.append(
                {
                    "model": model,
                    "precision": precision,
                    "batch_size": options.batch_size or batch,
                    "accumulation_steps": options.accumulation_steps or accumulation,
                    "image_size": options.image_size or IMAGE_SIZES.get(model, (28, 28)),
                    "channels": 1,
                    "device": options.device,
                    "channels_last": options.channels_last,
                    "compile": options.compile,
                    "baseline": options.baseline,
                    "seconds": options.seconds,
                    "warmup": min(2.0, options.seconds),
                    "min_steps": 2,
                }
            )
    return jobs


def _run_job(job: dict[str, Any], warned: set[str]) -> dict[str, Any]:
    """The Trainer's measurement, then the baseline's, each in its own process."""
    result = _run_part({**job, "part": "trainer"}, warned)
    if job["baseline"] and "error" not in result:
        baseline = _run_part({**job, "part": "baseline"}, warned)
        if "error" in baseline:  # the Trainer's figures still stand
            result["baseline_error"] = baseline["error"]
            logger.warning("The baseline of {} failed: {}", job["model"], baseline["error"])
        else:
            result.update(baseline)
    return result


def _run_part(job: dict[str, Any], warned: set[str]) -> dict[str, Any]:
    """One measurement in its own process; its warnings are relayed, each text once a run."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "gan.bench.measure", json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
    )
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        result = {"error": f"the measurement process failed (exit {proc.returncode}): {tail}"}
    for line in proc.stderr.splitlines():
        text = line.split(" - ", 1)[-1]
        if "WARNING" in line and text not in warned:
            warned.add(text)
            logger.warning("{}", text)
    return {**{k: job[k] for k in ("model", "batch_size", "accumulation_steps")}, **result}


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Measure everything and return the report (the JSON that --json writes)."""
    import torch

    from gan import speed
    from gan.bench.peak import best_peaks, measure_peaks
    from gan.devices import describe, resolve_device
    from gan.models import MODELS, check_model_fits

    jobs = _jobs(options, ["fp32"])
    for job in jobs:  # unknown names and sizes a model cannot make fail before any timing
        MODELS.get(job["model"])
        check_model_fits(job["model"], (job["channels"], *job["image_size"]), 100)
    device = resolve_device(options.device)
    speed.configure_backends(device)
    # Resolved here without warnings: each measurement's process gives them (relayed once).
    precisions = list(dict.fromkeys(speed.resolve_precision(p, device) for p in options.precisions))
    logger.info("Measuring the GEMM peaks on {}", describe(device))
    wanted = list(dict.fromkeys(["fp32", "bf16", *precisions]))
    first = measure_peaks(wanted, device, options.peak_seconds)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    results, warned = [], set()
    for job in _jobs(options, precisions):
        logger.info(
            "Measuring {} in {} (batch {} x {})",
            job["model"],
            job["precision"],
            job["batch_size"],
            job["accumulation_steps"],
        )
        results.append(_run_job(job, warned))
    # Measured again at the end, and the better of the two kept: on a shared machine a
    # neighbour's burst during one measurement would otherwise lower the peak.
    logger.info("Measuring the GEMM peaks again")
    last = measure_peaks(wanted, device, options.peak_seconds)
    peaks = best_peaks(first, last)
    for row in results:
        peak = peaks.get(row.get("precision"), {}).get("gflops")
        if "gflops" in row:
            row["fraction_of_peak"] = row["gflops"] / peak if peak else None
        if row.get("baseline_images_per_s"):
            row["speedup_vs_baseline"] = row["images_per_s"] / row["baseline_images_per_s"]
    return {
        "device": describe(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "peak_gflops": {p: v["gflops"] for p, v in peaks.items()},
        "peak_gemm_size": {p: v["size"] for p, v in peaks.items()},
        "peak_gflops_runs": {p: [first[p]["gflops"], last[p]["gflops"]] for p in peaks},
        "results": results,
    }


def table(report: dict[str, Any]) -> str:
    """The report as a Markdown table (what `gan bench` prints)."""
    peaks = ", ".join(
        f"{p} {v:,.0f}" if v else f"{p} n/a" for p, v in report["peak_gflops"].items()
    )
    lines = [
        f"{report['device']}; GEMM peak GFLOP/s: {peaks}",
        "",
        "| model | precision | batch | images/s | GFLOP/s | fraction of peak | "
        "baseline images/s | speed-up | peak memory MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        batch = f"{r['batch_size']}" + (
            f" x {r['accumulation_steps']}" if r["accumulation_steps"] > 1 else ""
        )
        if "error" in r:
            lines.append(f"| `{r['model']}` | | {batch} | error: {r['error']} | | | | | |")
            continue
        fraction = r.get("fraction_of_peak")
        base, gain = r.get("baseline_images_per_s"), r.get("speedup_vs_baseline")
        lines.append(
            f"| `{r['model']}` | {r['precision']} | {batch} | {r['images_per_s']:,.1f} | "
            f"{r['gflops']:,.1f} | {'n/a' if fraction is None else f'{fraction:.2f}'} | "
            f"{'' if base is None else f'{base:,.1f}'} | "
            f"{'' if gain is None else f'{gain:.2f}x'} | {r['peak_mem_mb']:,.0f} |"
        )
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(report, indent=2) + "\n")  # a link there is replaced
    except OSError as exc:
        reason = exc.strerror or exc
        raise GanError(f"Could not write {path} ({reason}); choose another --json.") from None
