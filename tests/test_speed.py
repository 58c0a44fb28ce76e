"""Precision, channels-last, compile, fused Adam, the joint D pass and streamed batches:
correctness on tiny CPU runs (speed itself is measured by `gan bench`, not tested)."""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from loguru import logger

from gan import speed
from gan.config import Config, OptimConfig, TrainConfig
from gan.devices import _glibc, configure_host_allocator
from gan.errors import GanError
from gan.models import build_models
from gan.rng import seed_everything
from gan.training.batches import DeviceBatches
from gan.training.build import trainer_of
from gan.training.loop import Trainer
from gan.training.runtime import build_runtime
from gan.training.step import d_backward
from tests.conftest import run_cli
from tests.test_trainer import TinyD, TinyG

CPU = torch.device("cpu")


def trainer_with(precision="fp32", channels_last=None, compile=False, model=None, batch=8,
                 seed=0, **train) -> Trainer:  # fmt: skip
    seed_everything(seed)
    settings = speed.resolve_speed(precision, channels_last, compile, CPU)
    config = Config(optim=OptimConfig(batch_size=batch), train=TrainConfig(seed=seed, **train))
    shape = (1, 8, 8)
    if model is None:
        generator, discriminator = TinyG(), TinyD()
    else:
        generator, discriminator = build_models(model, shape, 16)
    images = torch.randint(0, 256, (64, *shape), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))  # fmt: skip
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    batches = DeviceBatches(images, CPU, batch, seed, memory_format=fmt)
    return trainer_of(
        config, build_runtime(generator, discriminator, CPU, settings=settings), batches
    )


# ---- resolving the options ------------------------------------------------------------
def test_auto_precision_follows_the_cpu_and_layout_follows_the_precision(monkeypatch):
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: True)
    assert speed.resolve_speed("auto", None, False, CPU) == speed.Speed("bf16", True, False)
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: False)
    assert speed.resolve_speed("fp32", True, True, CPU) == speed.Speed("fp32", True, True)
    assert speed.resolve_speed(" BF16 ", False, False, CPU) == speed.Speed("bf16", False, False)
    assert speed.resolve_speed("auto", None, False, CPU).precision == "fp32"
    # fp32's layout follows the vector units: NHWC for oneDNN's AVX2 kernels, else NCHW
    for flags, nhwc in [({"avx2", "avx512f"}, False), ({"avx2", "fma"}, True),
                        ({"asimd", "bf16"}, False), (set(), False)]:  # fmt: skip
        monkeypatch.setattr(speed, "cpu_flags", lambda flags=flags: frozenset(flags))
        assert speed.resolve_speed("fp32", None, False, CPU).channels_last is nhwc, flags
    assert speed.resolve_speed("fp32", None, False, torch.device("mps")).channels_last is False


def warnings_of(call) -> list[str]:
    messages: list[str] = []
    sink = logger.add(messages.append, level="WARNING", format="{message}")
    try:
        call()
    finally:
        logger.remove(sink)
    return messages


def test_emulated_bf16_on_the_cpu_is_a_one_sentence_warning(monkeypatch):
    monkeypatch.setattr(speed, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    (message,) = warnings_of(lambda: speed.resolve_speed("bf16", None, False, CPU))
    assert "bf16 on this CPU is emulated" in message and "leave --precision at auto" in message
    assert warnings_of(lambda: speed.resolve_speed("auto", None, False, CPU)) == []
    assert speed.resolve_precision("auto", CPU) == "fp32"  # no warning path for the bench
    for flags in ({"avx512_bf16"}, set()):  # native, or unknown (no /proc/cpuinfo)
        monkeypatch.setattr(speed, "cpu_flags", lambda flags=flags: frozenset(flags))
        assert warnings_of(lambda: speed.resolve_speed("bf16", None, False, CPU)) == []


def test_unknown_precision_is_one_sentence():
    with pytest.raises(GanError, match="--precision 'fp64' is not one of auto, fp32, bf16, fp16"):
        speed.resolve_speed("fp64", None, False, CPU)
    with pytest.raises(GanError, match="--precision"):
        Config(train=TrainConfig(precision="half")).validate()


def test_native_bf16_and_avx512_detection_read_the_cpu_flags():
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split() if cpuinfo.exists() else [])
    assert speed.cpu_has_native_bf16() is bool({"avx512_bf16", "amx_bf16", "bf16"} & flags)
    assert speed.cpu_has_avx512() is ("avx512f" in flags)


# ---- mixed precision ------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_tracks_fp32_and_keeps_fp32_weights(precision):
    reference = trainer_with("fp32")
    low = trainer_with(precision)
    for _ in range(5):
        ref, got = reference.train_step(), low.train_step()
    assert abs(float(ref.d_loss) - float(got.d_loss)) < 0.05
    assert abs(float(ref.g_loss) - float(got.g_loss)) < 0.05
    assert all(p.dtype == torch.float32 for p in low.parts.runtime.G.parameters())
    assert all(math.isfinite(float(v)) for v in vars(got).values() if v is not None)


def test_generator_pass_sees_the_updated_discriminator():
    """Autocast caches low-precision weight copies until its context exits, so one context
    around the whole step would score G against D's weights from before D's update."""
    trainer = trainer_with("bf16")

    def zero_d_step(*args, **kwargs):  # instead of Adam: a D whose logits are all 0
        with torch.no_grad():
            for p in trainer.parts.runtime.D.parameters():
                p.zero_()

    trainer.parts.runtime.opt_d.step = zero_d_step
    stats = trainer.train_step()
    assert float(stats.g_loss) == pytest.approx(math.log(2), abs=1e-6)  # BCE(logit 0, real)


def test_fp16_scaler_state_goes_into_checkpoints_and_back():
    trainer = trainer_with("fp16")
    for _ in range(3):
        trainer.train_step()
    state = trainer.parts.state_dict()
    assert state["runtime"]["scaler_g"]["scale"] == trainer.parts.runtime.scaler_g.get_scale() > 0
    resumed = trainer_with("fp16")
    resumed.parts.load_state_dict(state)
    assert resumed.parts.runtime.scaler_d.get_scale() == trainer.parts.runtime.scaler_d.get_scale()
    assert (
        trainer_with("fp32").parts.state_dict()["runtime"]["scaler_g"] == {}
    )  # no scaler outside fp16


# ---- layout, optimizer, joint D pass, streamed data --------------------------------------
def test_channels_last_models_and_batches():
    trainer = trainer_with("bf16", True, model="dcgan")
    convs = [
        m.weight
        for m in trainer.parts.runtime.G.modules()
        if isinstance(m, torch.nn.ConvTranspose2d)
    ]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert trainer.parts.draws.batches.next().is_contiguous(memory_format=torch.channels_last)
    assert math.isfinite(float(trainer.train_step().g_loss))
    plain = trainer_with("fp32", False, model="dcgan")
    assert not plain.parts.runtime.G.net[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_computes_what_nchw_computes():
    a = trainer_with("fp32", False, model="dcgan")
    b = trainer_with("fp32", True, model="dcgan")
    for _ in range(3):
        sa, sb = a.train_step(), b.train_step()
    torch.testing.assert_close(sb.d_loss, sa.d_loss, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(sb.g_loss, sa.g_loss, rtol=1e-4, atol=1e-4)


def test_adam_is_fused_and_a_foreign_state_keeps_it_fused():
    trainer = trainer_with()
    assert trainer.parts.runtime.opt_g.param_groups[0]["fused"]
    plain = torch.optim.Adam(trainer.parts.runtime.G.parameters(), lr=1e-3, foreach=False)
    trainer.parts.runtime.G(torch.randn(2, 8)).sum().backward()
    plain.step()
    speed.load_optimizer(trainer.parts.runtime.opt_g, plain.state_dict())
    assert (
        trainer.parts.runtime.opt_g.param_groups[0]["fused"]
        and trainer.parts.runtime.opt_g.param_groups[0]["lr"] == 1e-3
    )
    trainer.train_step()  # steps with the loaded moments


def test_joint_discriminator_pass_gives_the_same_gradients():
    class JointTinyD(TinyD):
        batch_independent = True

    reals, z = torch.rand(8, 1, 8, 8) * 2 - 1, torch.randn(8, 8)
    grads = []
    for d_class in (TinyD, JointTinyD):
        seed_everything(0)
        config = Config(optim=OptimConfig(batch_size=8))
        batches = DeviceBatches(torch.zeros(8, 1, 8, 8, dtype=torch.uint8), CPU, 8, 0)
        trainer = trainer_of(config, build_runtime(TinyG(), d_class(), CPU), batches)
        assert trainer.parts.runtime.joint_d is (d_class is JointTinyD)
        loss, real_p, fake_p, _ = d_backward(
            trainer.parts.runtime, trainer.parts.recipe, [reals], [z], keep_fakes=False
        )
        grads.append(
            [loss, real_p, fake_p, *(p.grad for p in trainer.parts.runtime.D.parameters())]
        )
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_registered_discriminators_declare_batch_independence_truthfully():
    for name, expected in {"mlp": True, "fc-dcgan": True, "mri": True, "dcgan": False,
                           "dcgan-proj": False}.items():  # fmt: skip
        _, discriminator = build_models(name, (1, 16, 16), 8)
        has_batch_stats = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                              for m in discriminator.modules())  # fmt: skip
        assert getattr(discriminator, "batch_independent", False) is expected
        assert not (expected and has_batch_stats)


def test_streamed_batches_equal_resident_ones():
    images = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8)
    resident = DeviceBatches(images, CPU, 16, 3)
    streamed = DeviceBatches(images, CPU, 16, 3, resident=False)
    assert not streamed.resident
    for _ in range(10):  # crosses three epoch boundaries
        torch.testing.assert_close(streamed.next(), resident.next(), rtol=0, atol=0)
    assert streamed.position == resident.position == 160


# ---- compile ------------------------------------------------------------------------------
def test_compile_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(speed, "compile_available", lambda device: "no C++ compiler")
    settled = []
    messages = warnings_of(
        lambda: settled.append(speed.settle_compile(speed.Speed("fp32", False, True), CPU))
    )
    assert settled == [speed.Speed("fp32", False, False)]
    assert len(messages) == 1 and "no C++ compiler" in messages[0]


def test_compiled_training_matches_eager_and_checkpoints_stay_plain():
    if speed.compile_available(CPU) is not None:
        pytest.skip(f"torch.compile cannot run here: {speed.compile_available(CPU)}")
    eager, compiled = trainer_with("fp32"), trainer_with("fp32", compile=True)
    for _ in range(3):
        a, b = eager.train_step(), compiled.train_step()
    torch.testing.assert_close(b.d_loss, a.d_loss, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b.g_loss, a.g_loss, rtol=1e-4, atol=1e-5)
    state = compiled.parts.state_dict()
    runtime = state["runtime"]
    assert runtime["generator"].keys() == eager.parts.state_dict()["runtime"]["generator"].keys()
    assert not any("_orig_mod" in key for key in runtime["discriminator"])


# ---- the command line -----------------------------------------------------------------------
def test_train_records_the_resolved_speed_and_resume_may_change_it(tmp_path, mnist_dir):
    common = ["train", "--dataset", "mnist", "--data", str(mnist_dir), "--model", "mlp",
              "--device", "cpu", "--run-name", "r", "--log-every", "5"]  # fmt: skip
    first = run_cli(*common, "--max-steps", "5", "--precision", "bf16", "--channels-last",
                    cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    run = json.loads((tmp_path / "logs/r/run.json").read_text())
    assert run["speed"] == {"precision": "bf16", "channels_last": True, "compile": False}
    assert run["train"]["precision"] == "bf16" and run["data_on_device"] is True
    emulated = "bf16 on this CPU is emulated" in first.stderr
    assert emulated is (bool(speed.cpu_flags()) and not speed.cpu_has_native_bf16())
    again = run_cli(*common, "--max-steps", "8", "--precision", "fp32", "--resume", "auto",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    run = json.loads((tmp_path / "logs/r/run.json").read_text())
    assert run["speed"]["precision"] == "fp32" and run["resumed_at_step"] == 5
    history = [json.loads(line) for line in (tmp_path / "logs/r/history.jsonl").open()]
    assert [h["step"] for h in history] == [5, 8]


def test_bad_precision_on_the_command_line(tmp_path):
    result = run_cli("train", "--precision", "fp64", cwd=tmp_path)
    assert result.returncode == 2
    assert "'fp64' is not one of auto, fp32, bf16, fp16" in result.stderr


_ALLOCATOR_SCRIPT = """
import ctypes, json, resource, sys, torch
from gan.devices import configure_host_allocator
changed = configure_host_allocator(torch.device("cpu")) if sys.argv[1] == "tuned" else False
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_ssize_t]
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
# What a training step does: three 8 MiB activations, freed at its end.
for rounds in (2, 20):  # a warm-up, then the counted rounds
    before = faults()
    for _ in range(rounds):
        tensors = [torch.ones(2 * 2**20) for _ in range(3)]
        del tensors
step_faults = faults() - before
# The trim threshold: 256 MiB of 64 KiB blocks (below any mmap threshold: on the heap),
# freed from the top down. glibc as shipped hands back to the kernel whatever lies free
# at the heap's top beyond its trim threshold (128 KiB, raised to at most 64 MiB).
blocks = (ctypes.c_void_p * 4096)()
base = libc.sbrk(0)
for i in range(len(blocks)):
    blocks[i] = libc.malloc(64 * 2**10)
grown = libc.sbrk(0)
for i in reversed(range(len(blocks))):
    libc.free(blocks[i])
kept = libc.sbrk(0)
print(json.dumps({"changed": changed, "faults": step_faults, "grown": (grown - base) >> 20,
                  "trimmed": (grown - kept) >> 20}))
"""


@pytest.mark.skipif(sys.platform != "linux" or not _glibc(), reason="glibc's malloc only")
def test_host_allocator_setting_keeps_freed_memory_and_stops_per_step_page_faults():
    """The setting itself, seen in the process: a large free at the heap's top is not
    trimmed (glibc as shipped trims it in the same run, whatever the machine), and steps
    stop faulting their pages in again (which the mmap threshold is for: a trim threshold
    alone turns glibc's dynamic mmap threshold off, and every 8 MiB block is mapped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    for name in ("GLIBC_TUNABLES", "LD_PRELOAD"):
        env.pop(name, None)
    procs = {mode: subprocess.Popen([sys.executable, "-c", _ALLOCATOR_SCRIPT, mode], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for mode in ("default", "tuned")}  # fmt: skip
    got = {}
    for mode, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        got[mode] = json.loads(out.strip().splitlines()[-1])
    default, tuned = got["default"], got["tuned"]
    assert default["changed"] is False and tuned["changed"] is True, got
    # The probe did grow the heap by far more than any default trim threshold (64 MiB)...
    assert min(default["grown"], tuned["grown"]) >= 128, got
    # ...and glibc as shipped gave it back at once: the probe can tell the setting apart.
    assert default["trimmed"] >= default["grown"] - 64, got
    assert tuned["trimmed"] == 0, got  # a 1 GiB trim threshold keeps it
    # Tuned, at most the heap's first growth faults. glibc as shipped trims what is freed
    # at the heap's top, so steps fault their pages in again; how many faults that makes
    # depends on the kernel (large anonymous folios fault once per folio) and on what
    # lies above the tensors, so the untuned count is only compared with the tuned one.
    # On some machines glibc's dynamic mmap threshold already keeps the heap (untuned
    # counts of ~3,700 over 20 steps on a Zen 5 with kernel 6.18, against ~21,000 in
    # other processes of the same run).
    # Tuned runs have been seen to fault two steps' pages and one more (12,289 on a Zen 4
    # while another process ran): the heap's growth can come in two goes. Three steps'
    # worth of 20 still tells a kept heap from one faulted in again on every step.
    step = 3 * 8 * 2**20 // resource.getpagesize()  # the pages one step touches
    assert tuned["faults"] <= 3 * step, got
    if default["faults"] > 10 * step:  # here glibc as shipped faults on most steps
        assert default["faults"] > 3 * max(tuned["faults"], 100), got


@pytest.mark.parametrize(
    "name,value",
    [("MALLOC_TRIM_THRESHOLD_", "131072"), ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1"),
     ("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")],
)  # fmt: skip
def test_host_allocator_leaves_a_users_own_setting_alone(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert not configure_host_allocator(torch.device("cpu"))


def test_host_allocator_is_for_the_cpu_only():
    assert not configure_host_allocator(torch.device("cuda", 0))
    assert not configure_host_allocator(torch.device("mps"))
