"""What near-perfect "generators" score on the bundled MRI sample: the scale of issue 18's
targets (FID <= 2.8, precision and recall >= 0.5, random-conv features, 500 samples).

    uv run python benchmarks/mri_metric_reference.py [--num-samples 500] [--seed 0]

Each row makes 500 images from the 142 real slices themselves, with no training: blends
of two neighbouring slices (new images on the data's own manifold), then such blends
after one perturbation each (pixel noise, blur, lower resolution, a shift, a brightness
change), and scores them exactly as `gan evaluate --metrics fid,pr,nn` does. It shows
which errors the metrics forgive and which they do not: a GAN's samples must be right to
a pixel or two in where the anatomy lies, while noise and softness cost little.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from gan.config import DataConfig
from gan.data.mri import load_mri
from gan.metrics.copies import copy_scores
from gan.metrics.evaluate import compute
from gan.metrics.features import RandomConv


def perturbations(reals: torch.Tensor, count: int, rng: torch.Generator) -> dict:
    """name -> images in [0, 1] (count x 1 x H x W), made from the reals."""
    n, (h, w) = len(reals), reals.shape[-2:]
    i = torch.randint(0, n - 1, (count,), generator=rng)
    t = torch.rand(count, generator=rng)[:, None, None, None]
    blend = reals[i] * (1 - t) + reals[i + 1] * t
    noise = torch.randn(blend.shape, generator=rng)

    def resized(factor: int) -> torch.Tensor:
        small = F.interpolate(blend, size=(h // factor, w // factor), mode="area")
        return F.interpolate(small, size=(h, w), mode="bilinear")

    return {
        "real slices, drawn at random (copies)": reals[
            torch.randint(0, n, (count,), generator=rng)
        ],
        "blends of two neighbouring slices": blend,
        "blends + pixel noise, std 0.05": blend + 0.05 * noise,
        "blends + pixel noise, std 0.1": blend + 0.1 * noise,
        "blends, Gaussian blur sigma 1 px": TF.gaussian_blur(blend, 9, 1.0),
        "blends, Gaussian blur sigma 2 px": TF.gaussian_blur(blend, 9, 2.0),
        "blends at half resolution, upsampled": resized(2),
        "blends at quarter resolution, upsampled": resized(4),
        "blends shifted 1 px sideways": torch.roll(blend, 1, dims=3),
        "blends shifted 2 px sideways": torch.roll(blend, 2, dims=3),
        "blends 5% brighter": blend * 1.05,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_mri(DataConfig(name="mri"), None)
    reals = data.images.float() / 255.0
    net = RandomConv().eval()
    with torch.no_grad():
        real_feats = net(reals)
        rows = []
        rng = torch.Generator().manual_seed(args.seed)
        for name, images in perturbations(reals, args.num_samples, rng).items():
            images = images.clamp(0, 1)
            fake_feats = net(images)
            row = {"images": name, **compute(real_feats, fake_feats, ("fid", "pr"))}
            row["nn_feature_median_ratio"] = copy_scores(real_feats, fake_feats)["median_ratio"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| images | FID | precision | recall | nn ratio (features) |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['images']} | {r['fid']:.2f} | {r['precision']:.2f} | {r['recall']:.2f} "
              f"| {r['nn_feature_median_ratio']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
