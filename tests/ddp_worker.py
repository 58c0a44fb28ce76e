"""Run under torchrun by tests/test_distributed.py: train a few steps, dump what each rank has.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_worker.py MODE OUT

MODE `tiny`: a model without batch statistics or dropout, batch 8 per process.
MODE `real`: the registered dcgan-proj model (BatchNorm, dropout) on the bundled digits.
MODE `fail`: rank 1 fails at once while rank 0 waits in a collective (`fail_one_rank`).
MODE `r1`: `tiny` with hinge, spectral norm, R1 at every step and adaptive augmentation.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan import distributed  # noqa: E402
from gan.config import Config, OptimConfig, TrainConfig  # noqa: E402
from gan.data import DataConfig, load_dataset  # noqa: E402
from gan.models import build_models  # noqa: E402
from gan.rng import seed_everything  # noqa: E402
from gan.training.batches import DeviceBatches  # noqa: E402
from gan.training.build import trainer_of  # noqa: E402
from gan.training.loop import Trainer  # noqa: E402
from gan.training.recipe import build_recipe  # noqa: E402
from gan.training.runtime import build_runtime  # noqa: E402
from tests.test_trainer import TinyD, TinyG  # noqa: E402


def build(mode: str, info: distributed.DistInfo, batch: int, steps: int) -> Trainer:
    config = Config(
        optim=OptimConfig(batch_size=batch),
        train=TrainConfig(max_steps=steps, log_every=1, ema_decay=0),
    )
    seed_everything(info.rank)  # deliberately different per process: DDP must align them
    if mode in ("tiny", "r1"):
        images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))  # fmt: skip
        g, d = TinyG(), TinyD()
    else:
        images = load_dataset(
            DataConfig(name="mnist", source=str(Path(__file__).parent / "data" / "mnist-1k"))
        ).images
        g, d = build_models("dcgan-proj", (1, 28, 28), 100)
    batches = DeviceBatches(images, torch.device("cpu"), batch, 0, info.rank, info.world_size)
    runtime = build_runtime(
        g, d, torch.device("cpu"), ema_decay=0, dist=info, spectral_norm=mode == "r1"
    )
    if mode != "r1":
        return trainer_of(config, runtime, batches)
    recipe = build_recipe(
        "hinge", device=torch.device("cpu"), augment=("color", "translation"),
        augment_p="auto", r1_gamma=1.0, r1_every=1, dist=info,
    )  # fmt: skip
    return trainer_of(config, runtime, batches, recipe=recipe)


def fail_one_rank(info: distributed.DistInfo) -> None:
    """Rank 1 fails at once; rank 0 waits for it in a collective. Rank 0 never leaves by
    itself: when gloo sees the peer gone it says so and waits on, so what ends it is
    torchrun stopping the others (SIGTERM), and its first failure stays rank 1's."""
    if info.rank == 1:
        print("rank 1: failing on purpose with exit code 3", file=sys.stderr, flush=True)
        sys.exit(3)
    print("rank 0: waiting for rank 1 in a barrier", file=sys.stderr, flush=True)
    try:
        distributed.barrier(info)
    except RuntimeError as exc:  # gloo: the connection to rank 1 closed
        first = str(exc).strip().splitlines()[0][:200]
        print(f"rank 0: lost contact with rank 1 ({first})", file=sys.stderr, flush=True)
    else:
        print("rank 0: passed the barrier without rank 1", file=sys.stderr, flush=True)
    time.sleep(120)  # only torchrun stopping this process ends it early
    print("rank 0: was never stopped", file=sys.stderr, flush=True)


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    info = distributed.from_env()
    distributed.init(info, torch.device("cpu"))
    if mode == "fail":
        fail_one_rank(info)
        return
    trainer = build(mode, info, batch=8, steps=5)
    losses = []
    for _ in range(5):
        stats = trainer.train_step()
        logged = distributed.mean(torch.stack([stats.d_loss, stats.g_loss]), info)
        losses.append(logged.tolist())
        if trainer.step == 1:
            g_state = {k: v.clone() for k, v in trainer.parts.runtime.G.state_dict().items()}
            torch.save(g_state, out / f"g-step1-rank{info.rank}.pt")
    rt = trainer.parts.runtime
    final = {"losses": losses, "d": rt.D.state_dict(), "g": rt.G.state_dict(),
             "augment_p": trainer.parts.recipe.augment.p}  # fmt: skip
    torch.save(final, out / f"final-rank{info.rank}.pt")
    distributed.barrier(info)  # both ranks' results are on disk
    # gloo's teardown now and then aborts a process ("terminate called without an active
    # exception") after all its work is done; what this worker checks is written, so it
    # leaves without the teardown.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
