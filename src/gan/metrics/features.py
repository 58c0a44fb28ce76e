"""Feature networks for sample-quality metrics. Each maps images in [0, 1] to (N, D) features."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from loguru import logger
from torch import nn

from gan.errors import GanError

WEIGHTS_DIR = Path(__file__).parent / "weights"
INCEPTION_ENV = "GAN_INCEPTION_WEIGHTS"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


class LeNet(nn.Module):
    """A small MNIST classifier; its 128-d penultimate layer is the feature space."""

    num_features = 128

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 28 -> 24 -> 12
            nn.Conv2d(32, 64, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 12 -> 8 -> 4
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 128),
            nn.ReLU(),
        )
        self.head = nn.Linear(128, 10)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images of any size and channel count -> normalised 1 x 28 x 28."""
        x = images.float().mean(dim=1, keepdim=True) if images.shape[1] != 1 else images.float()
        if tuple(x.shape[-2:]) != (28, 28):
            x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True)
        return (x - 0.1307) / 0.3081

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class RandomConv(nn.Module):
    """A fixed random convolutional network (weights from a seeded normal draw).

    It knows nothing about brains or nuclei: its FID compares low- and mid-level image
    statistics, which is honest for data without labels, and comparable only between runs
    scored with these same features and sample counts.
    """

    num_features = 512

    def __init__(self, seed: int = 2015) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        widths = (1, 32, 64, 128, 128)
        self.convs = nn.ModuleList()
        for c_in, c_out in zip(widths, widths[1:], strict=False):
            conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
            with torch.no_grad():
                scale = (2.0 / (9 * c_in)) ** 0.5  # He initialisation
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * scale)
                conv.bias.zero_()
            self.convs.append(conv)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().mean(dim=1, keepdim=True) * 2 - 1
        x = F.interpolate(x, size=(64, 64), mode="bilinear", antialias=True)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return F.adaptive_avg_pool2d(x, 2).flatten(1)  # 128 channels x a 2x2 grid of means


class ImageNetStyle(nn.Module):
    """Adapts any ImageNet-style extractor: grayscale -> 3 channels, [0, 1] -> uint8."""

    def __init__(self, extractor: nn.Module, num_features: int) -> None:
        super().__init__()
        self.extractor, self.num_features = extractor, num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images[:, :3]
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8)  # the standard FID input
        out = self.extractor(x)
        return (out[0] if isinstance(out, tuple | list) else out).flatten(1)


def load_lenet() -> nn.Module:
    path = WEIGHTS_DIR / "mnist-lenet.pt"
    net = LeNet()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


def lenet_recipe() -> dict:
    return json.loads((WEIGHTS_DIR / "mnist-lenet.json").read_text())


def inception_path(weights: str | None) -> Path:
    """The 2015-12-05 Inception weights from --features-weights or GAN_INCEPTION_WEIGHTS."""
    given = weights or os.environ.get(INCEPTION_ENV)
    if not given:
        raise GanError(
            f"--features inception needs the standard Inception weights ({INCEPTION_FILE}, as "
            "used by pytorch-fid, torchmetrics and torch-fidelity); download it once on a "
            f"machine with internet and pass --features-weights PATH or set {INCEPTION_ENV}."
        )
    path = Path(given).expanduser()
    if not path.is_file():  # a fifo or a device is no weights file either
        raise GanError(f"Inception weights {path} do not exist; check --features-weights.")
    return path


INCEPTION_SHA256 = "6726825d"  # the published file's digest starts so (its name says it)


def inception_state(path: Path) -> dict[str, torch.Tensor]:
    """The weights as tensors, read with torch.load(weights_only=True): a file that holds
    anything else (a pickled object that would run code) is refused, not loaded."""
    import pickle

    from gan.checkpoint import zip_problem

    with open(path, "rb") as f:
        zipped = f.read(4) == b"PK\x03\x04"
    if zipped and (problem := zip_problem(path)) is not None:
        raise GanError(f"{path} cannot be read as Inception weights ({problem}).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise GanError(
            f"{path} holds objects other than tensors, so it was not loaded (loading it could "
            f"run code); use the standard {INCEPTION_FILE}."
        ) from None
    except Exception as exc:
        raise GanError(
            f"{path} could not be read as Inception weights ({type(exc).__name__}); use the "
            f"standard {INCEPTION_FILE}."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GanError(f"{path} is not a table of weights; use the standard {INCEPTION_FILE}.")
    if not file_digest(path).startswith(INCEPTION_SHA256):
        logger.warning(
            "{} is not the published {} (SHA-256 differs): its FID is not comparable with "
            "published figures.",
            path,
            INCEPTION_FILE,
        )
    return state


def load_inception(weights: str | None) -> nn.Module:
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    path = inception_path(weights)
    state = inception_state(path)
    try:
        # torch-fidelity reads a weights path with weights_only=False; hand it the tensors
        # read safely above, in place of its download, so it never opens the file itself.
        with mock.patch.object(fidelity, "load_state_dict_from_url", lambda *a, **k: state):
            net = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], None)
    except Exception as exc:
        raise GanError(
            f"{path} could not be loaded as Inception weights ({type(exc).__name__}); use "
            f"the standard {INCEPTION_FILE}."
        ) from None
    return ImageNetStyle(net.eval(), 2048)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
