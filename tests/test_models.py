"""Model families: registry names, output shapes, size checks."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from gan.errors import GanError
from gan.models import MODELS, build_models, check_model_fits

SHAPES = {
    "mlp": [(1, 28, 28), (1, 200, 160), (3, 17, 23)],
    "dcgan": [(1, 28, 28), (3, 64, 64)],
    "dcgan-proj": [(1, 28, 28), (1, 32, 32)],
    "fc-dcgan": [(1, 28, 28), (1, 32, 48)],
    "mri": [(1, 200, 160), (1, 64, 64)],
}


def test_all_four_seed_models_and_the_mnist_default_are_registered():
    assert set(MODELS.names()) == set(SHAPES)


@pytest.mark.parametrize(("name", "shape"), [(n, s) for n, ss in SHAPES.items() for s in ss])
def test_generator_makes_the_requested_shape_and_discriminator_one_logit(name, shape):
    torch.manual_seed(0)
    generator, discriminator = build_models(name, shape, 16)
    z = torch.randn(3, *generator.latent_shape)
    fake = generator(z)
    assert fake.shape == (3, *shape)
    assert fake.min() >= -1 and fake.max() <= 1  # Tanh output, matches data in [-1, 1]
    logits = discriminator(fake)
    assert logits.shape == (3,)


def test_mri_model_default_size_is_200x160():
    generator, _ = build_models("mri", (1, 200, 160), 100)
    assert generator(torch.randn(2, 100)).shape == (2, 1, 200, 160)


def test_dcgan_is_seed_003_exactly():
    generator, discriminator = build_models("dcgan", (1, 28, 28), 100)
    assert generator.latent_shape == (100, 7, 7)  # independent noise at each 7x7 position
    convs = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (100, 256, (4, 4), (2, 2)),
        (256, 128, (4, 4), (2, 2)),
        (128, 1, (3, 3), (1, 1)),
    ]
    dconvs = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in dconvs] == [(1, 64), (64, 128), (128, 256)]


@pytest.mark.parametrize(
    ("name", "size"), [("mri", (7, 7)), ("mri", (30, 30)), ("dcgan", (6, 6)), ("fc-dcgan", (8, 8))]
)
def test_sizes_a_model_cannot_make_are_refused_with_a_sentence(name, size):
    with pytest.raises(GanError, match=r"image-size|cannot make|too small"):
        check_model_fits(name, (1, *size), 100)


def test_size_check_leaves_the_rng_alone_and_stays_fast():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for name in MODELS.names():
        check_model_fits(name, (1, 64, 64), 100)
    assert torch.equal(torch.rand(3), expected)  # no initialisation ran: seeded runs unchanged
    # No meta-device kernels: they would import sympy (1-2 s on every `gan train`).
    code = (
        "import sys; from gan.models import check_model_fits; "
        "check_model_fits('dcgan', (1, 64, 64), 100); print('sympy' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_unknown_model_lists_valid_names():
    with pytest.raises(GanError, match="dcgan-proj"):
        build_models("stylegan9", (1, 28, 28), 100)
