"""Generator/discriminator pairs, by name (names and summaries: `gan.config.catalog`)."""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from gan.config.catalog import MODELS
from gan.errors import GanError


def build_models(
    name: str,
    image_shape: tuple[int, int, int],
    latent_dim: int,
    classes: int = 0,
    grow: int = 0,
) -> tuple[nn.Module, nn.Module]:
    """Build (G, D); G has a `latent_shape` attribute, D returns one logit per image.
    With `classes`, G(z, y) and D(x, y) take class indices too (`gan.models.conditional`);
    with `grow` (levels), they train coarse to fine (`gan.models.growth`)."""
    generator, discriminator = MODELS.get(name).builder()(tuple(image_shape), latent_dim)
    if not hasattr(generator, "latent_shape"):
        raise TypeError(f"generator of model {name!r} does not declare latent_shape")
    if grow:
        from gan.models.growth import grow_pair

        if not (hasattr(generator, "growth") and hasattr(discriminator, "growth")):
            raise GanError(f"--grow needs a model that can grow (fastgan); {name!r} cannot.")
        generator, discriminator = grow_pair((generator, discriminator), image_shape, grow)
    if classes:
        from gan.models.conditional import conditional_pair

        generator, discriminator = conditional_pair(generator, discriminator, classes)
    return generator, discriminator


class _SkipInit(TorchFunctionMode):
    """Leaves weight initialisation out (nn.init and in-place random fills): shapes only."""

    FILLS = frozenset(
        {
            torch.Tensor.normal_,
            torch.Tensor.uniform_,
            torch.Tensor.fill_,
            torch.Tensor.zero_,
            torch.Tensor.copy_,
        }
    )

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__module__", None) == "torch.nn.init" or func in self.FILLS:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))


def _shape_only(name: str, image_shape: tuple[int, int, int], latent_dim: int):
    """(G, D) with uninitialised CPU weights: built on the meta device without running
    their initialisation, then given memory. (Meta-device initialisation or forward passes
    would import torch's symbolic-shape machinery, 1-2 s on every command.)"""
    MODELS.get(name).builder()  # import the model's module outside the meta context
    with torch.device("meta"), _SkipInit():
        models = build_models(name, image_shape, latent_dim)
    return [m._apply(lambda t: torch.empty(t.shape, dtype=t.dtype)).eval() for m in models]


def generator_shapes(
    name: str, image_shape: tuple[int, int, int], latent_dim: int, classes: int = 0, grow: int = 0
) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in G's state dict, from a build on the meta device: what a
    checkpoint's weights must match before any memory is given to the model."""
    MODELS.get(name).builder()
    with torch.device("meta"), _SkipInit():
        generator, _ = build_models(name, image_shape, latent_dim, classes, grow)
        state = generator.state_dict()
    return {key: tuple(t.shape) for key, t in state.items()}


def parameter_bytes(
    name: str, image_shape: tuple[int, int, int], latent_dim: int, classes: int = 0, grow: int = 0
) -> tuple[int, int]:
    """Bytes of G's and of D's parameters and buffers, counted on the meta device: what
    building them would allocate, known before any of it is."""
    models = _on_meta(name, image_shape, latent_dim, classes, grow)
    g, d = (
        sum(t.numel() * t.element_size() for t in (*m.parameters(), *m.buffers())) for m in models
    )
    return g, d


def parameter_count(
    name: str, image_shape: tuple[int, int, int], latent_dim: int, classes: int = 0, grow: int = 0
) -> tuple[int, int]:
    """G's and D's parameters, counted on the meta device."""
    models = _on_meta(name, image_shape, latent_dim, classes, grow)
    g, d = (sum(p.numel() for p in m.parameters()) for m in models)
    return g, d


def _on_meta(name: str, image_shape: tuple[int, int, int], latent: int, classes: int, grow: int):
    """(G, D) on the meta device: shapes without memory or initialisation."""
    MODELS.get(name).builder()  # import the model's module outside the meta context
    with torch.device("meta"), _SkipInit():
        return build_models(name, image_shape, latent, classes, grow)


# Pixel values of an image above which G and D are run on the meta device (nothing
# allocated; the first run imports PyTorch's symbolic shapes, about 1.5 s): below it, one
# real image through uninitialised weights costs at most a few hundred MB.
LARGE_IMAGE = 1 << 17


def _forward_pass(
    name: str, image_shape: tuple[int, int, int], latent_dim: int
) -> tuple[tuple[int, ...], bool, int]:
    """G's image shape, whether D makes one logit per image, and the bytes of every layer's
    output for one image: one image through G and D, on the meta device when it is large."""
    made = [0]

    def count(module: nn.Module, _: object, output: object) -> None:
        if isinstance(output, torch.Tensor) and next(module.children(), None) is None:
            made[0] += output.numel() * output.element_size()

    meta = math.prod(image_shape) > LARGE_IMAGE
    if meta:
        MODELS.get(name).builder()
        with torch.device("meta"), _SkipInit():
            models = [m.eval() for m in build_models(name, image_shape, latent_dim)]
    else:
        models = _shape_only(name, image_shape, latent_dim)
    for module in (m for net in models for m in net.modules()):
        module.register_forward_hook(count)
    generator, discriminator = models
    with torch.device("meta" if meta else "cpu"), torch.no_grad():
        out = generator(torch.zeros(1, *generator.latent_shape))
        fits = False
        with contextlib.suppress(RuntimeError):  # D cannot take images this small
            fits = discriminator(torch.zeros(1, *image_shape)).shape == (1,)
    return tuple(out.shape[1:]), fits, made[0]


def activation_bytes(name: str, image_shape: tuple[int, int, int], latent_dim: int) -> int:
    """Bytes of the feature maps G and D make for one image: what a training step holds
    per image for its backward pass, counted before a batch of them is allocated."""
    return _forward_pass(name, image_shape, latent_dim)[2]


def check_model_fits(name: str, image_shape: tuple[int, int, int], latent_dim: int) -> None:
    """Fail early (before any data is loaded) when a model cannot make this image size.
    Large images go through G and D on the meta device: even one could take more memory
    than the machine has."""
    _, height, width = image_shape
    made, fits, _ = _forward_pass(name, image_shape, latent_dim)
    if not fits:
        raise GanError(
            f"--image-size {height}x{width} is too small for model {name!r}'s discriminator; "
            "choose a larger --image-size or another --model."
        )
    if tuple(made) != tuple(image_shape):
        raise GanError(
            f"Model {name!r} cannot make {image_shape[1]}x{image_shape[2]} images "
            f"(it makes {made[1]}x{made[2]}); choose another --image-size or --model."
        )


def can_grow(name: str) -> bool:
    """Whether the model says where its coarse levels are (`--grow`)."""
    generator, discriminator = _shape_only(name, (1, 64, 64), 16)
    return hasattr(generator, "growth") and hasattr(discriminator, "growth")


def has_batch_statistics(name: str, image_shape: tuple[int, int, int], latent_dim: int) -> bool:
    """Whether the model's D mixes the images of a batch (BatchNorm), which per-image
    gradient penalties cannot allow."""
    _, discriminator = _shape_only(name, image_shape, latent_dim)
    return not getattr(discriminator, "batch_independent", False)


def require_multiple(name: str, image_shape: tuple[int, int, int], factor: int, least: int) -> None:
    """Shared size rule for convolutional models: H and W multiples of `factor`, >= `least`."""
    _, height, width = image_shape
    if height % factor or width % factor or min(height, width) < least:
        raise GanError(
            f"--image-size {height}x{width} does not suit model {name!r}: height and width must "
            f"be multiples of {factor} and at least {least} (for example {least * 2}x{least * 2})."
        )
