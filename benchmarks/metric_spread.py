"""How far each metric moves with the choice of the reals alone, at n = 100, 300, 1,000
reals: which metric to trust at which number of reals (docs/evaluation.md).

    uv run python benchmarks/metric_spread.py [MNIST_DIR] [--repeats 20] [--fakes 2000]

From the 10,000-digit MNIST test split (default ../shared/data), in `mnist-lenet`
features, shuffled once (seed 0; the split's first 5,000 digits are neater than its last
5,000): half is the pool the reals are drawn from, the other half the "generators",
which are never trained:
- `ideal`: 2,000 held-out digits (a perfect generator);
- `dropped`: 2,000 held-out digits of classes 0-6 only (30% of the modes missing);
- `noisy`: the ideal digits with Gaussian pixel noise (sigma 0.25, clipped to [0, 1]).
For each n, `--repeats` draws of n reals from the pool (seeded) are scored against each
generator exactly as `gan evaluate --metrics fid,pr,dc` scores (the same functions).
Prints one JSON line per (n, generator, metric): mean and standard deviation over draws.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from gan.config import DataConfig
from gan.data.mnist import load_mnist
from gan.metrics.evaluate import compute, extract
from gan.metrics.features import load_lenet

METRICS = ("fid", "precision", "recall", "density", "coverage")


def generators(images: torch.Tensor, labels: torch.Tensor, fakes: int) -> dict[str, torch.Tensor]:
    """name -> images in [0, 1] from the held-out half (see the module's doc)."""
    held, held_labels = images[5000:].float() / 255, labels[5000:]
    rng = torch.Generator().manual_seed(1)
    ideal = held[torch.randperm(len(held), generator=rng)[:fakes]]
    kept = held[held_labels <= 6]
    dropped = kept[torch.randperm(len(kept), generator=rng)[:fakes]]
    noisy = (ideal + 0.25 * torch.randn(ideal.shape, generator=rng)).clamp(0, 1)
    return {"ideal": ideal, "dropped": dropped, "noisy": noisy}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mnist", nargs="?", default="../shared/data")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--fakes", type=int, default=2000)
    parser.add_argument("--sizes", default="100,300,1000")
    args = parser.parse_args()
    data = load_mnist(DataConfig(name="mnist", source=str(Path(args.mnist))), None)
    order = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(0))
    images, labels = data.images[order], data.labels[order]
    net, cpu = load_lenet(), torch.device("cpu")
    pool = extract(net, images[:5000].float() / 255, cpu, 500)
    fakes = {
        name: extract(net, made, cpu, 500)
        for name, made in generators(images, labels, args.fakes).items()
    }
    start = time.perf_counter()
    for n in map(int, args.sizes.split(",")):
        rng = torch.Generator().manual_seed(n)
        draws = [torch.randperm(len(pool), generator=rng)[:n] for _ in range(args.repeats)]
        for name, fake in fakes.items():
            scores = [compute(pool[d], fake, ("fid", "pr", "dc")) for d in draws]
            for metric in METRICS:
                values = np.array([s[metric] for s in scores])
                line = {"n": n, "generator": name, "metric": metric}
                line |= {"mean": round(values.mean(), 4), "std": round(values.std(ddof=1), 4)}
                print(json.dumps(line), flush=True)
    print(json.dumps({"seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
