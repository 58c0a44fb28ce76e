"""Profile the training step of a dataset's default recipe with torch.profiler.

    uv run python benchmarks/profile_step.py mnist --data ../shared/data
    uv run python benchmarks/profile_step.py mri --steps 20
    uv run python benchmarks/profile_step.py mnist --data ../shared/data --set train.compile=true

Builds the trainer exactly as `gan train` does (the plan, the data, the builder), times
`--steps` steps after a warm-up, then profiles as many and prints the operators that take
the most time on the host (self time), and images/s. Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import platform
import time
import tomllib

import torch
from torch.profiler import ProfilerActivity, profile

from gan.config import FIELDS, Config
from gan.config.given import FLAG
from gan.data import load_dataset
from gan.devices import synchronize
from gan.distributed import DistInfo
from gan.progress import setup_console_logging
from gan.training import plan as plans
from gan.training.build import assemble, build_parts
from gan.training.runtime import setup_device, setup_speed


def build(dataset: str, data: str | None, settings: list[str]):
    values = {"data.name": dataset, "train.device": "cpu"}
    if data:
        values["data.source"] = data
    for item in settings:
        key, _, text = item.partition("=")
        try:  # TOML's reading of the value (true, 3, 1e-4), else the text itself
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        values[key] = FIELDS[key].check(value)
    given = Config.from_values(values)
    plan = plans.before_data(given, dict.fromkeys(values, FLAG))
    loaded = load_dataset(plan.config.data)
    plan = plans.after_data(plan, loaded)
    t = plan.config.train
    device = setup_device(t.device, DistInfo(), t.sync_bn)
    speed = setup_speed(t.precision, t.channels_last, t.compile, device)
    parts, _ = build_parts(plan, loaded, device, None, None, DistInfo(), speed)
    return assemble(parts, plan.config, plan.schedule)


def timed(trainer, steps: int) -> float:
    synchronize(trainer.parts.runtime.device)
    began = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    synchronize(trainer.parts.runtime.device)
    return (time.perf_counter() - began) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--data")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--set", action="append", default=[], help="section.field=value")
    args = parser.parse_args()
    setup_console_logging("WARNING")
    trainer = build(args.dataset, args.data, args.set)
    timed(trainer, args.warmup)
    step_s = timed(trainer, args.steps)
    per_step = trainer.schedule.images_per_step
    print(f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"{args.dataset} {' '.join(args.set)}: {1 / step_s:.1f} steps/s, "
          f"{per_step / step_s:,.0f} images/s ({per_step} images a step)")  # fmt: skip
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timed(trainer, args.steps)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
    print(table)


if __name__ == "__main__":
    main()
