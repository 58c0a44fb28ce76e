"""Train the `mnist-lenet` feature network shipped in src/gan/metrics/weights/.

    uv run python scripts/train_mnist_lenet.py [MNIST_DIR]   # default ../shared/data

Offline recipe: the MNIST test split (the only split here), digits 0-8,999 for training
and 9,000-9,999 held out; seed 0; Adam 1e-3; batch 128; 6 epochs; random shifts of up
to 2 pixels. Writes mnist-lenet.pt (state dict) and mnist-lenet.json (recipe, accuracy).
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gan.data.mnist import find_split, read_idx_images
from gan.metrics.features import WEIGHTS_DIR, LeNet, file_digest

EPOCHS, BATCH, LR, SEED, TRAIN = 6, 128, 1e-3, 0, 9000


def labels(images_file: Path) -> np.ndarray:
    path = images_file.with_name(images_file.name.replace("images-idx3", "labels-idx1"))
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return np.frombuffer(raw, dtype=np.uint8, offset=8)


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    images_file = find_split(root, "train") or find_split(root, "test")
    x = torch.from_numpy(read_idx_images(images_file).copy()).unsqueeze(1).float() / 255.0
    y = torch.from_numpy(labels(images_file).astype(np.int64))
    torch.manual_seed(SEED)
    net = LeNet()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    started = time.time()
    for epoch in range(EPOCHS):
        order = torch.randperm(TRAIN)
        for i in range(0, TRAIN, BATCH):
            idx = order[i : i + BATCH]
            shift = torch.randint(-2, 3, (2,)).tolist()
            batch = torch.roll(x[idx], shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(net.logits(batch), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}")
    net.eval()
    with torch.no_grad():
        accuracy = (net.logits(x[TRAIN:]).argmax(1) == y[TRAIN:]).float().mean().item()
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    weights = WEIGHTS_DIR / "mnist-lenet.pt"
    torch.save(net.state_dict(), weights)
    recipe = {
        "command": "uv run python scripts/train_mnist_lenet.py ../shared/data",
        "data": f"{images_file.name}: digits 0-{TRAIN - 1} train, {TRAIN}-{len(x) - 1} held out",
        "epochs": EPOCHS, "batch_size": BATCH, "lr": LR, "seed": SEED,
        "augmentation": "random shifts of up to 2 pixels",
        "held_out_accuracy": round(accuracy, 4),
        "train_seconds": round(time.time() - started, 1),
        "sha256_16": file_digest(weights),
        "torch": torch.__version__,
    }  # fmt: skip
    (WEIGHTS_DIR / "mnist-lenet.json").write_text(json.dumps(recipe, indent=2) + "\n")
    print(json.dumps(recipe, indent=2))


if __name__ == "__main__":
    main()
