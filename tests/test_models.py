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
    "resgan": [(1, 200, 160), (1, 128, 128), (1, 64, 64), (3, 64, 64), (1, 16, 16)],
    "fastgan": [(1, 200, 160), (1, 128, 128), (1, 64, 64), (3, 64, 64), (1, 32, 32)],
}
SMALL_DATA = ["resgan", "fastgan"]


def test_the_seed_models_and_the_small_data_models_are_registered():
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
    ("name", "size"),
    [
        ("mri", (7, 7)),
        ("mri", (30, 30)),
        ("dcgan", (6, 6)),
        ("fc-dcgan", (8, 8)),
        ("resgan", (28, 28)),
        ("resgan", (8, 8)),
    ],
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


# ---- resgan and fastgan: the small-data pairs ---------------------------------------------------


@pytest.mark.parametrize("name", SMALL_DATA)
def test_small_data_models_fit_the_mri_bps_and_64x64_sizes(name):
    for shape in [(1, 200, 160), (1, 128, 128), (1, 64, 64), (3, 64, 64)]:
        check_model_fits(name, shape, 100)
    with pytest.raises(GanError, match="multiples of 8"):
        build_models(name, (1, 28, 28), 100)


@pytest.mark.parametrize("name", SMALL_DATA)
def test_small_data_discriminators_are_batch_independent(name):
    from gan.models import has_batch_statistics

    assert has_batch_statistics(name, (1, 64, 64), 100) is False
    generator, discriminator = build_models(name, (1, 64, 64), 16)
    assert not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()
    )
    # Every BatchNorm of G is a direct child of G.net, where --conditional finds them.
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(any(m is n for n in generator.net) for m in norms)
    x = torch.randn(4, 1, 64, 64)
    with torch.no_grad():  # an image's logit does not depend on the rest of its batch
        torch.testing.assert_close(discriminator(x)[:1], discriminator(x[:1]))


@pytest.mark.parametrize("name", SMALL_DATA)
def test_small_data_one_training_step_with_r1_gives_every_parameter_a_finite_gradient(name):
    from gan.training.recipe import build_recipe
    from gan.training.runtime import build_runtime
    from gan.training.step import train_step

    torch.manual_seed(0)
    cpu = torch.device("cpu")
    generator, discriminator = build_models(name, (1, 64, 64), 16)
    before = [p.detach().clone() for p in discriminator.parameters()]
    rt = build_runtime(generator, discriminator, cpu, compile_d=False, ema_decay=0)
    assert rt.joint_d  # reals and fakes share D's pass
    recipe = build_recipe("ns", device=cpu, r1_gamma=1.0)  # R1 due at step 0: double backward
    real = torch.rand(4, 1, 64, 64) * 2 - 1
    stats = train_step(rt, recipe, lambda: ([real], [torch.randn(4, 16)], [None]), 0)
    assert torch.isfinite(stats.d_loss) and torch.isfinite(stats.g_loss)
    for name, p in [*generator.named_parameters(), *discriminator.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    after = list(discriminator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # D stepped


@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("name", SMALL_DATA)
def test_small_data_checkpoints_round_trip_exactly(tmp_path, name, spectral_norm):
    from gan.training.runtime import add_spectral_norm

    def pair(seed):
        torch.manual_seed(seed)
        g, d = build_models(name, (1, 64, 64), 16)
        return g, add_spectral_norm(d) if spectral_norm else d

    generator, discriminator = pair(0)
    z, x = torch.randn(4, 16), torch.rand(4, 1, 64, 64) * 2 - 1
    discriminator(generator(z))  # train mode: BatchNorm statistics and power iterations move
    torch.save({"g": generator.state_dict(), "d": discriminator.state_dict()}, tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    g2, d2 = pair(1)
    g2.load_state_dict(state["g"])
    d2.load_state_dict(state["d"])
    for m in (generator, discriminator, g2, d2):
        m.eval()
    with torch.no_grad():
        assert torch.equal(g2(z), generator(z))
        assert torch.equal(d2(x), discriminator(x))


@pytest.mark.parametrize("name", SMALL_DATA)
def test_small_data_models_take_labels(name):
    from gan.models.conditional import ClassBatchNorm

    torch.manual_seed(0)
    generator, discriminator = build_models(name, (1, 64, 64), 16, classes=3)
    plain, _ = build_models(name, (1, 64, 64), 16)
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.net)
    assert sum(isinstance(m, ClassBatchNorm) for m in generator.generator.net) == norms
    z, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 0])
    fake = generator(z, y)
    assert fake.shape == (4, 1, 64, 64)
    assert discriminator(fake, y).shape == (4,)
    assert discriminator.batch_independent


def test_fastgan_holds_no_full_resolution_feature_map_and_keeps_no_activation():
    import copy

    from gan.models.fastgan import Excite, Stash

    torch.manual_seed(0)
    generator, _ = build_models("fastgan", (1, 200, 160), 16)
    widest = {}

    def record(module, _inputs, output):
        if output.dim() == 4 and output.shape[-2:] == (200, 160):
            widest[type(module).__name__] = output.shape[1]

    for layer in generator.net:
        layer.register_forward_hook(record)
    generator(torch.randn(2, 16))
    # At full resolution there are only the upsampled 16-channel map and the image.
    assert widest == {"Upsample": 16, "Conv2d": 1, "Tanh": 1}
    stash = next(m for m in generator.net if isinstance(m, Stash))
    assert stash.slot == {}  # the excitation popped the map it read
    # The moving average of G is a deep copy: its Stash and Excite share their own slot.
    twin = copy.deepcopy(generator)
    twin_stash = next(m for m in twin.net if isinstance(m, Stash))
    twin_excite = next(m for m in twin.net if isinstance(m, Excite))
    assert twin_stash.slot is twin_excite.slot and twin_stash.slot is not stash.slot
    z = torch.randn(3, 16)
    generator.eval(), twin.eval()
    with torch.no_grad():
        assert torch.equal(twin(z), generator(z))


@pytest.mark.parametrize("name", ["mnist", "mri", "bps"])
def test_the_catalogs_parameter_counts_are_the_dataset_defaults_models(name):
    """`gan train --dry-run` shows these without loading torch: they must be the counts."""
    from gan.config import Config
    from gan.config.catalog import DATASETS
    from gan.models import parameter_count

    spec, config = DATASETS.get(name), Config()
    own = dict(spec.defaults)
    classes = 10 if own.get("model.conditional") else 0  # MNIST's digits
    shape = (spec.channels, *spec.default_image_size)
    counted = parameter_count(spec.default_model, shape, config.model.latent_dim, classes)
    assert spec.parameters == counted
