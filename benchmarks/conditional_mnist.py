"""Conditional MNIST: does `gan sample --label k` make the digit k?

    uv run python benchmarks/conditional_mnist.py [--data ../shared/data] [--seconds 300]
        [--workdir DIR] [-- extra gan train options]

Trains `gan train --dataset mnist --conditional --time-limit SECONDS` on the CPU in a fresh
workdir (or reuses DIR/checkpoints/last.pt with --skip-train), then for every digit k
makes `--num` images with label k exactly as `gan sample --label k` does, and classifies
them with the shipped mnist-lenet. Beside each share it prints the classifier's own
accuracy on the real test digits it never saw in training (9000-9999). Markdown out.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gan.data.mnist import find_split, read_idx_images, read_idx_labels
from gan.images import to_unit
from gan.metrics.features import load_lenet
from gan.metrics.scores import precision_recall
from gan.models.generate import generate_all
from gan.outputs.generator import load_generator, resolve_label


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


@torch.no_grad()
def predict(net: torch.nn.Module, unit: torch.Tensor) -> torch.Tensor:
    return torch.cat([net.logits(b).argmax(1) for b in unit.split(500)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path("../shared/data").resolve()))
    parser.add_argument("--seconds", default="300")
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("extra", nargs="*", help="more gan train options, after --")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cond-mnist-"))
    started = time.perf_counter()
    if not args.skip_train:
        command = [sys.executable, "-m", "gan", "train", "--dataset", "mnist", "--data",
                   args.data, "--conditional", "--time-limit", args.seconds, "--device", "cpu",
                   "--run-name", "r", *args.extra]  # fmt: skip
        subprocess.run(command, cwd=work, check=True)
    wall = time.perf_counter() - started
    checkpoint = work / "checkpoints/last.pt"
    generator, state = load_generator(checkpoint, torch.device("cpu"))
    classes = state["model"]["classes"]
    net = load_lenet()
    root = Path(args.data)
    images = read_idx_images(find_split(root, "test"))
    labels = read_idx_labels(
        find_split(root, "test", {"test": "t10k-labels-idx1-ubyte"}), len(images)
    )
    held_out = torch.from_numpy(images[9000:].copy()).unsqueeze(1).float() / 255
    truth = torch.from_numpy(labels[9000:].astype("int64"))
    real_pred = predict(net, held_out)
    run = json.loads((work / "logs/r/run.json").read_text()) if not args.skip_train else {}
    print(f"CPU: {cpu_name()}; precision {run.get('speed', {}).get('precision', '?')}; "
          f"step {state['step']}; train+load {wall:.0f} s; workdir {work}")  # fmt: skip
    print("| digit | generated classified as it | lenet on real held-out digits "
          "| precision / recall within the class |")  # fmt: skip
    print("|---|---|---|---|")
    worst = 1.0
    all_truth = torch.from_numpy(labels.astype("int64"))
    all_real = torch.from_numpy(images.copy()).unsqueeze(1).float() / 255
    for name in classes:
        k = resolve_label(name, classes, checkpoint)
        fakes = generate_all(generator, args.num, seed=k, labels=torch.full((args.num,), k))
        share = float((predict(net, to_unit(fakes)) == k).float().mean())
        mask = truth == k
        real = float((real_pred[mask] == k).float().mean())
        worst = min(worst, share - min(0.95, real - 0.02) if real < 0.97 else share - 0.95)
        # Diversity: the class's generated digits against its real ones, in lenet features.
        with torch.no_grad():
            real_k = net.features(all_real[all_truth == k][: args.num])
            fake_k = net.features(to_unit(fakes))
        precision, recall = precision_recall(real_k, fake_k)
        print(f"| {name} | {share:.1%} | {real:.1%} ({int(mask.sum())} digits) "
              f"| {precision:.2f} / {recall:.2f} |")  # fmt: skip
    print(f"Overall lenet accuracy on held-out reals: {(real_pred == truth).float().mean():.1%}")
    print("Target met" if worst >= 0 else "Target NOT met")
    evaluate = [sys.executable, "-m", "gan", "evaluate", str(checkpoint), "--device", "cpu"]
    scores = subprocess.run(evaluate, capture_output=True, text=True, check=True)
    result = json.loads(scores.stdout.strip().splitlines()[-1])
    print("gan evaluate (10,000 samples, classes as often as in the data): " + ", ".join(
        f"{key} {result[key]:.3g}" for key in ("fid", "kid", "precision", "recall")))  # fmt: skip


if __name__ == "__main__":
    main()
