"""Shared by mnist_fid_table.py and mri_fid_table.py: train a named candidate for a fixed
CPU budget in a fresh workdir, score its last checkpoint with `gan evaluate`, and print
the rows as JSON lines and a Markdown table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def gan(*args: str, cwd: Path, threads: int | None, core: str | None) -> str:
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    pin = ["taskset", "-c", core] if core else []
    command = [*pin, sys.executable, "-m", "gan", *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    if result.returncode:
        sys.exit(result.stderr[-3000:])
    return result.stdout


def run_one(dataset: str, source: list[str], name: str, flags: list[str], budget: str,
            num_samples: str, threads: int | None, core: str | None,
            fitted: bool = False) -> dict:  # fmt: skip
    """`gan train --time-limit BUDGET` (no other budget), or with `fitted` `gan train
    --time-budget BUDGET` (the plan fitted to the time), then `gan evaluate`."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if fitted:
            length = ["--time-budget", budget]
        else:  # a candidate that plans its own length (--lr-decay follows it) keeps it
            planned = {"--max-steps", "--epochs", "--time-budget"} & set(flags)
            length = [] if planned else ["--max-steps", "10000000", "--epochs", "1000000"]
            length += ["--time-limit", budget]
        gan("train", "--dataset", dataset, *source, *flags, *length, "--device", "cpu",
            "--run-name", "r", "--log-every", "50", "--checkpoint-every", "10000000",
            "--sample-every", "10000000", cwd=work, threads=threads, core=core)  # fmt: skip
        history = [json.loads(x) for x in (work / "logs/r/history.jsonl").open()]
        run = json.loads((work / "logs/r/run.json").read_text())
        out = gan("evaluate", "checkpoints/last.pt", "--num-samples", num_samples, "--device",
                  "cpu", cwd=work, threads=threads, core=core)  # fmt: skip
        result = json.loads(out.strip().splitlines()[-1])
        trained = (
            history[-1]["time"]
            - history[0]["time"]
            + history[0]["step"] / (history[0]["images_per_s"] / run["images_per_step"])
        )  # first record's window too
        return {"candidate": name, "flags": " ".join(flags), "seconds": int(budget),
                "budget": "--time-budget" if fitted else "--time-limit",
                "steps": history[-1]["step"], "trained_s": round(trained, 1),
                "precision_arith": run["speed"]["precision"], **result}  # fmt: skip


def main(dataset: str, source: list[str], candidates: dict[str, list[str]], budgets: str,
         num_samples: str, doc: str) -> None:  # fmt: skip
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--budgets", default=budgets, help="seconds of training, e.g. 60,300")
    parser.add_argument("--candidates", default=",".join(candidates), help="names, see above")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of each run")
    parser.add_argument("--cores", help="pin runs to these cores, one run per core at once, "
                        "e.g. 0,1 (with --threads 1: two runs in parallel)")  # fmt: skip
    parser.add_argument("--extra", default="", help="more gan train flags for every run, "
                        "e.g. --extra='--precision fp32'")  # fmt: skip
    parser.add_argument("--time-budget", action="store_true", help="train with --time-budget "
                        "S (the plan fitted to the time) instead of --time-limit S")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    jobs = [(c, b) for b in args.budgets.split(",") for c in args.candidates.split(",")]
    cores = args.cores.split(",") if args.cores else [None]
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; threads per run: "
          f"{args.threads or 'all'}; pinned: {args.cores or 'no'}", flush=True)  # fmt: skip

    def work(index: int, job: tuple[str, str]) -> dict:
        name, budget = job
        core = cores[index % len(cores)]
        flags = [*candidates[name], *args.extra.split()]
        row = run_one(dataset, source, name, flags, budget, num_samples, args.threads, core,
                      args.time_budget)  # fmt: skip
        print(json.dumps(row), flush=True)
        return row

    with ThreadPoolExecutor(len(cores)) as pool:
        rows = list(pool.map(work, range(len(jobs)), jobs))
    print("\n| candidate | flags | budget | trained | steps | FID | precision | recall |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['candidate']} | `{r['flags']}` | {r['budget']} {r['seconds']} | "
              f"{r['trained_s']:.0f} s | {r['steps']:,} | {r['fid']:.2f} | "
              f"{r['precision']:.2f} | {r['recall']:.2f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
