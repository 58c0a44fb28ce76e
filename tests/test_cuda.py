"""CUDA paths: no host sync in the hot loop, fp16 with its loss scaler, bf16, channels-last,
compile, data streamed from pinned memory. Skipped without a GPU (CI has none); run on a
lent GPU with `uv run pytest tests/test_cuda.py`."""

from __future__ import annotations

import math

import pytest
import torch

from gan import speed
from gan.config import Config, ModelConfig, OptimConfig, TrainConfig
from gan.models import build_models
from gan.rng import seed_everything
from gan.training.batches import DeviceBatches
from gan.training.build import trainer_of
from gan.training.loop import Trainer
from gan.training.runtime import build_runtime

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = torch.device("cuda")


def cuda_trainer(model="dcgan", precision="bf16", batch=16, accumulation=1, compile=False,
                 resident=None, shape=(1, 28, 28), device=CUDA) -> Trainer:  # fmt: skip
    seed_everything(0)
    config = Config(
        model=ModelConfig(name=model, latent_dim=100),
        optim=OptimConfig(batch_size=batch, accumulation_steps=accumulation),
        train=TrainConfig(ema_decay=0.999),
    )
    settings = speed.resolve_speed(precision, None, compile, device)
    generator, discriminator = build_models(model, shape, 100)
    images = torch.randint(0, 256, (256, *shape), dtype=torch.uint8)
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    batches = DeviceBatches(images, device, batch, 0, memory_format=fmt, resident=resident)
    return trainer_of(
        config, build_runtime(generator, discriminator, device, settings=settings), batches
    )


def test_the_cuda_tests_build_their_objects_on_the_cpu():
    """Runs everywhere: the helper every CUDA test uses still fits the training API."""
    trainer = cuda_trainer("dcgan-proj", "fp32", batch=4, device=torch.device("cpu"))
    assert trainer.parts.runtime.device.type == "cpu" and trainer.parts.runtime.G_ema is not None
    assert math.isfinite(float(trainer.train_step().g_loss))


@needs_cuda
@pytest.mark.parametrize(
    ("model", "precision", "accumulation"),
    [("dcgan", "bf16", 1), ("dcgan-proj", "fp16", 1), ("mri", "bf16", 2), ("fc-dcgan", "fp32", 1)],
)
def test_training_steps_never_wait_for_the_gpu(model, precision, accumulation):
    shape = (1, 32, 32) if model == "mri" else (1, 28, 28)
    trainer = cuda_trainer(model, precision, accumulation=accumulation, shape=shape)
    for _ in range(3):  # first steps: cuDNN autotuning, allocator growth, first epoch order
        trainer.train_step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any host-device sync raises
    try:
        for _ in range(5):
            stats = trainer.train_step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert math.isfinite(float(stats.d_loss)) and math.isfinite(float(stats.g_loss))


@needs_cuda
def test_fp16_uses_a_loss_scaler_that_is_checkpointed():
    trainer = cuda_trainer("dcgan-proj", "fp16")
    assert (
        trainer.parts.runtime.scaler_d.is_enabled() and trainer.parts.runtime.scaler_g.is_enabled()
    )
    for _ in range(4):
        trainer.train_step()
    state = trainer.parts.state_dict()
    assert state["runtime"]["scaler_g"]["scale"] > 0 and state["runtime"]["scaler_d"]["scale"] > 0
    assert trainer.parts.runtime.opt_g.param_groups[0][
        "fused"
    ]  # fused Adam takes the scale on the device
    other = cuda_trainer("dcgan-proj", "fp16")
    other.parts.load_state_dict(state)
    assert other.parts.runtime.scaler_g.get_scale() == trainer.parts.runtime.scaler_g.get_scale()


@needs_cuda
def test_channels_last_by_default_on_cuda_and_weights_stay_fp32():
    trainer = cuda_trainer("dcgan", "bf16")
    conv = trainer.parts.runtime.G.net[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert conv.dtype == torch.float32  # autocast keeps fp32 master weights
    assert trainer.parts.draws.batches.next().is_contiguous(memory_format=torch.channels_last)


@needs_cuda
def test_streamed_batches_equal_resident_ones():
    resident = cuda_trainer(resident=True).batches
    streamed = cuda_trainer(resident=False).batches
    assert streamed.images.is_pinned() and streamed.images.device.type == "cpu"
    for _ in range(40):  # several epochs of 256 images in batches of 16
        torch.testing.assert_close(streamed.next(), resident.next(), rtol=0, atol=0)
    trainer = cuda_trainer(resident=False)
    for _ in range(3):
        stats = trainer.train_step()
    assert math.isfinite(float(stats.d_loss))


@needs_cuda
def test_compile_on_cuda_trains_and_matches_eager_closely():
    # dcgan has no dropout (compiled code draws other random masks than eager code).
    eager = cuda_trainer("dcgan", "fp32", batch=8)
    compiled = cuda_trainer("dcgan", "fp32", batch=8, compile=True)
    assert compiled.parts.runtime.speed.compile
    for _ in range(3):
        a, b = eager.train_step(), compiled.train_step()
    assert abs(float(a.d_loss) - float(b.d_loss)) < 1e-2
    assert abs(float(a.g_loss) - float(b.g_loss)) < 1e-2
