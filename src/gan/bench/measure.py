"""One `gan bench` measurement, run in its own process (`python -m gan.bench.measure JSON`):
the Trainer's images/s, FLOPs per image and peak memory, or (job["part"] == "baseline")
the naive baseline's images/s.

A process per measurement makes peak RSS mean one model's training, and keeps compiled
graphs, allocator settings and caches, and thread pools of one from helping or hurting the
next: the baseline runs with glibc's malloc as it ships, as a plain script would.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from gan import speed
from gan.config import Config, ModelConfig, OptimConfig, TrainConfig
from gan.devices import (
    configure_cuda_allocator,
    resolve_device,
    synchronize,
)
from gan.errors import GanError
from gan.models import build_models, check_model_fits
from gan.rng import seed_everything
from gan.training.batches import DeviceBatches
from gan.training.build import trainer_of
from gan.training.loop import Trainer
from gan.training.runtime import build_runtime, setup_device, setup_speed

NUM_IMAGES = 2048  # synthetic uint8 images, resident on the device like a real dataset


def _trainer(
    job: dict[str, Any], images: torch.Tensor, device: torch.device, settings: speed.Speed
) -> Trainer:
    """The loop `gan train` runs (EMA included), on resident synthetic images."""
    seed_everything(0)
    config = Config(
        model=ModelConfig(name=job["model"], latent_dim=100),
        optim=OptimConfig(
            batch_size=job["batch_size"], accumulation_steps=job["accumulation_steps"]
        ),
        train=TrainConfig(ema_decay=0.999),
    )
    generator, discriminator = build_models(job["model"], tuple(images.shape[1:]), 100)
    runtime = build_runtime(generator, discriminator, device, settings=settings)
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    batches = DeviceBatches(images, device, job["batch_size"], 0, memory_format=fmt)
    return trainer_of(config, runtime, batches)


def _counted_step(trainer: Trainer) -> int:
    """One training step, its FLOPs counted by torch.utils.flop_counter."""
    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    return counter.get_total_flops()


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB else


def _images(job: dict[str, Any]) -> torch.Tensor:
    shape = (job["channels"], *job["image_size"])
    check_model_fits(job["model"], shape, 100)
    return torch.randint(
        0, 256, (NUM_IMAGES, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def measure_baseline(job: dict[str, Any]) -> dict[str, Any]:
    from gan.bench.baseline import baseline_images_per_s

    configure_cuda_allocator()
    device = resolve_device(job["device"])
    images = _images(job)
    rate = baseline_images_per_s(
        job["model"],
        images,
        job["batch_size"],
        job["accumulation_steps"],
        device,
        job["seconds"],
        job["min_steps"],
    )
    return {"baseline_images_per_s": rate}


def measure(job: dict[str, Any]) -> dict[str, Any]:
    if job.get("part") == "baseline":
        return measure_baseline(job)
    device = setup_device(job["device"])
    settings = setup_speed(job["precision"], job["channels_last"], job["compile"], device)
    images = _images(job)
    trainer = _trainer(job, images, device, settings)
    if settings.compile:  # count on an eager twin (compiling changes no FLOPs)
        eager = speed.Speed(settings.precision, settings.channels_last, False)
        flops = _counted_step(_trainer(job, images, device, eager))
        trainer.train_step()
    else:  # the first step is counted, and is the first warm-up step too
        flops = _counted_step(trainer)
    # Warm-up: compilation, cuDNN autotuning, allocator growth.
    started = time.perf_counter()
    while time.perf_counter() - started < job["warmup"]:
        trainer.train_step()
    synchronize(device)
    steps, start = 0, time.perf_counter()
    while steps < job["min_steps"] or time.perf_counter() - start < job["seconds"]:
        trainer.train_step()
        steps += 1
    synchronize(device)
    elapsed = time.perf_counter() - start
    per_step = trainer.schedule.images_per_step
    result = {
        **{k: job[k] for k in ("model", "batch_size", "accumulation_steps")},
        "image_size": list(job["image_size"]),
        "precision": settings.precision,
        "channels_last": settings.channels_last,
        "compile": settings.compile,
        "device": str(device),
        "steps": steps,
        "seconds": elapsed,
        "images_per_s": steps * per_step / elapsed,
        "flops_per_image": flops / per_step,
        "gflops": steps * flops / elapsed / 1e9,
        "peak_mem_mb": _peak_memory_mb(device),
    }
    return result


def main() -> None:
    job = json.loads(sys.argv[1])
    try:
        result = measure(job)
    except GanError as exc:
        result = {"error": str(exc)}
    except torch.cuda.OutOfMemoryError:
        result = {"error": f"CUDA ran out of memory at batch size {job['batch_size']}."}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
