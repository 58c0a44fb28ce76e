"""`gan export`: each format gives the checkpoint's generator's images (max abs difference
1e-4 on the same latents), and the plain-PyTorch example of docs/export.md runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan.outputs.generator import generator_from_checkpoint
from tests.conftest import MNIST_1K, ROOT, run_cli

TINY = ["--dataset", "mnist", "--data", str(MNIST_1K), "--device", "cpu", "--batch-size", "8",
        "--max-steps", "3", "--sample-every", "1000"]  # fmt: skip
MODELS = {
    "mlp": ["--model", "mlp", "--no-conditional"],
    "dcgan-proj": ["--model", "dcgan-proj", "--no-conditional"],  # convolutions, BN
    "conditional": ["--model", "mlp", "--conditional"],
    # its excitation reads a map a Stash layer kept earlier in the same pass
    "fastgan": ["--model", "fastgan", "--no-conditional", "--image-size", "32x32"],
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("export")
    found = {}
    for name, flags in MODELS.items():
        result = run_cli("train", *TINY, *flags, "--workdir", work, "--run-name", name, cwd=work)
        assert result.returncode == 0, result.stderr
        found[name] = work / "checkpoints" / name / "last.pt"
    return found


def export(checkpoint: Path, fmt: str, out: Path) -> dict:
    result = run_cli("export", checkpoint, "--format", fmt, "--out", out, cwd=out.parent)
    assert result.returncode == 0, result.stderr
    path, sidecar = (Path(p) for p in result.stdout.split())
    assert path.is_file() and sidecar == path.with_name(path.name + ".json")
    return json.loads(sidecar.read_text())


def reference(checkpoint: Path, batch: int = 5) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    generator, state = generator_from_checkpoint(checkpoint, torch.device("cpu"))
    classes = len(state["model"].get("classes") or [])
    z = torch.randn(batch, *generator.latent_shape, generator=torch.Generator().manual_seed(1))
    inputs = (z, torch.arange(batch) % classes) if classes else (z,)
    with torch.no_grad():
        return inputs, generator(*inputs)


CASES = [("mlp", "safetensors"), ("mlp", "exported"), ("mlp", "onnx"),
         ("dcgan-proj", "exported"), ("dcgan-proj", "onnx"), ("dcgan-proj", "safetensors"),
         ("conditional", "exported"), ("conditional", "onnx"),
         ("fastgan", "exported"), ("fastgan", "onnx")]  # fmt: skip


@pytest.mark.parametrize(("model", "fmt"), CASES)
def test_every_format_makes_the_checkpoints_images(checkpoints, tmp_path, model, fmt):
    meta = export(checkpoints[model], fmt, tmp_path / "g")
    path = tmp_path / meta["file"]
    inputs, expected = reference(checkpoints[model])
    if fmt == "safetensors":
        from safetensors.torch import load_file

        from gan.models import build_models

        state = torch.load(checkpoints[model], weights_only=True)
        generator, _ = build_models(
            meta["model"], tuple(meta["image_shape"]), meta["latent_shape"][0]
        )
        generator.load_state_dict(load_file(path))
        assert all(
            torch.equal(t, state["runtime"]["generator_ema"][k]) for k, t in load_file(path).items()
        )
        with torch.no_grad():
            got = generator.eval()(*inputs)
    elif fmt == "exported":
        got = torch.export.load(path).module()(*inputs)
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        feeds = {name: x.numpy() for name, x in zip(names, inputs, strict=True)}
        got = torch.from_numpy(session.run(None, feeds)[0])
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-4
    assert meta["image_shape"] == list(expected.shape[1:]) and meta["value_range"] == [-1, 1]
    assert meta["training"]["step"] == 3 and meta["training"]["run"] == model
    if model == "conditional":
        assert meta["classes"] == list("0123456789") and "labels" in meta["inputs"]


def test_the_exported_program_takes_any_batch_size(checkpoints, tmp_path):
    meta = export(checkpoints["conditional"], "exported", tmp_path / "g.pt2")
    program = torch.export.load(tmp_path / meta["file"]).module()
    for batch in (1, 7):
        z = torch.randn(batch, *meta["latent_shape"])
        assert program(z, torch.zeros(batch, dtype=torch.long)).shape == (batch, 1, 28, 28)


def test_the_docs_plain_pytorch_example_runs_without_gan(checkpoints, tmp_path):
    text = (ROOT / "docs" / "export.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)[1]
    assert not re.search(r"^\s*(import gan|from gan)", code, re.M)
    export(checkpoints["mlp"], "safetensors", tmp_path / "generator.safetensors")
    script = tmp_path / "example.py"
    script.write_text(code + '\ntorch.save(images, "check.pt")\n')
    # -I: no current folder or user site on the path; the venv's torch and safetensors only
    result = subprocess.run([sys.executable, "-I", str(script)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "samples.png").is_file()
    generator, _ = generator_from_checkpoint(checkpoints["mlp"], torch.device("cpu"))
    torch.manual_seed(0)
    with torch.no_grad():
        expected = (generator(torch.randn(16, 100)) + 1) / 2
    got = torch.load(tmp_path / "check.pt")
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)


def test_export_refuses_a_corrupt_checkpoint_and_a_folder(checkpoints, tmp_path):
    blob = bytearray(checkpoints["mlp"].read_bytes())
    state = torch.load(checkpoints["mlp"], weights_only=True)
    raw = state["runtime"]["generator_ema"]["net.0.weight"].numpy().tobytes()
    at = bytes(blob).find(raw) + 64
    blob[at : at + 32] = bytes(b ^ 0xFF for b in blob[at : at + 32])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(blob))
    result = run_cli("export", bad, "--out", tmp_path / "g", cwd=tmp_path)
    assert result.returncode == 1 and "is corrupt" in result.stderr
    assert not (tmp_path / "g.safetensors").exists()
    result = run_cli("export", checkpoints["mlp"], "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 1 and "is a folder" in result.stderr
