"""`gan export`: the moving-average generator alone, for programs without gan.

Three formats, each with `<file>.json` beside it (shapes, value range, classes, training):

- `safetensors`: the weights (safetensors, the field's format for weights alone); the
  architecture is the program's to rebuild (docs/export.md shows one in plain PyTorch).
- `exported`: a `torch.export` program (`.pt2`), weights and graph, loaded with
  `torch.export.load(path).module()` (TorchScript's successor).
- `onnx`: ONNX through `torch.onnx.export(dynamo=True)`, for onnxruntime and other runtimes.

Every format takes any batch size. safetensors and onnx are imported here only, so the
CLI's start-up stays fast.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan import __version__
from gan.atomic import atomic_write, fresh_temp
from gan.config.tracking import redact
from gan.errors import GanError
from gan.runs.folders import run_paths_for
from gan.runs.guard import check_folders

FORMATS = {"safetensors": ".safetensors", "exported": ".pt2", "onnx": ".onnx"}
MAX_BATCH = 65536


def default_out(checkpoint: Path, state: dict[str, Any], fmt: str) -> Path:
    """Beside the run's checkpoints: checkpoints/<run>/generator-<step>.<ext>."""
    name = f"generator-{int(state['step']):07d}{FORMATS[fmt]}"
    paths = run_paths_for(checkpoint, state)
    if paths is None:
        return checkpoint.parent / name
    check_folders(paths.workdir, (paths.checkpoints,), "give --out")  # no link, nowhere else
    return paths.checkpoints / name


def describe(generator: torch.nn.Module, state: dict[str, Any], fmt: str, out: Path) -> dict:
    """The JSON written beside an export: what a program needs to call the generator."""
    model = state["model"]
    classes = list(model.get("classes") or [])
    inputs = {"z": {"shape": ["batch", *generator.latent_shape], "dtype": "float32"}}
    if classes:
        inputs["labels"] = {"shape": ["batch"], "dtype": "int64", "values": "class indices"}
    return {
        "format": fmt,
        "file": out.name,
        "model": model["name"],
        "weights": "moving average of G" if state["runtime"].get("generator_ema") else "G",
        "inputs": inputs,
        "latent_shape": list(generator.latent_shape),
        "latent_distribution": "standard normal",
        "image_shape": list(model["image_shape"]),
        "output": {"shape": ["batch", *model["image_shape"]], "dtype": "float32"},
        "value_range": [-1.0, 1.0],
        "to_unit_range": "(images + 1) / 2",
        "classes": classes or None,
        "class_weights": _class_weights(generator, classes),
        "training": {
            "run": state.get("run_name"),
            "step": int(state["step"]),
            "dataset": state.get("dataset"),
            "config": _without_credentials(state.get("config")),
            "best_fid": state["reporter"].get("best_fid"),
            "gan_version": __version__,
            "torch_version": torch.__version__,
        },
    }


def _without_credentials(config: Any) -> Any:
    """The stored config with an MLflow URI's credentials hidden: a checkpoint of an older
    gan (or a forged one) may hold them, and a sidecar travels with the export."""
    track = config.get("track") if isinstance(config, dict) else None
    if not isinstance(track, dict) or not isinstance(track.get("mlflow_uri"), str):
        return config
    return {**config, "track": {**track, "mlflow_uri": redact(track["mlflow_uri"])}}


def _class_weights(generator: torch.nn.Module, classes: list[str]) -> list[float] | None:
    weights = getattr(generator, "class_weights", None)
    if not classes or weights is None:
        return None
    return [float(w) for w in weights]


def example_inputs(generator: torch.nn.Module, classes: int, batch: int = 2) -> tuple:
    z = torch.randn(batch, *generator.latent_shape)
    return (z, torch.arange(batch) % classes) if classes else (z,)


def export(checkpoint: Path, fmt: str, out: Path | None = None) -> tuple[Path, Path]:
    """Write the generator in `fmt` and its JSON; returns both paths."""
    from gan.outputs.generator import generator_from_checkpoint

    if fmt not in FORMATS:
        raise GanError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
    generator, state = generator_from_checkpoint(checkpoint, torch.device("cpu"))
    generator = generator.float().eval()
    out = out or default_out(Path(checkpoint), state, fmt)
    if out.is_dir():
        raise GanError(f"--out {out} is a folder; give a file name, e.g. {out / 'g'}.")
    if out.suffix != FORMATS[fmt]:
        out = out.with_name(out.name + FORMATS[fmt])
    classes = len(state["model"].get("classes") or [])
    tmp: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = fresh_temp(out)  # the writers open it by name: ours, never a planted link
        with torch.no_grad():
            _WRITERS[fmt](generator, classes, tmp)
        os.replace(tmp, out)  # complete or absent, like checkpoints
    except OSError as exc:
        raise GanError(
            f"Could not write {out} ({exc.strerror or exc}); choose another --out."
        ) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    meta = describe(generator, state, fmt, out)
    meta["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    sidecar = out.with_name(out.name + ".json")
    atomic_write(sidecar, json.dumps(meta, indent=2) + "\n")
    logger.info("Exported the generator of step {} as {} to {}", state["step"], fmt, out)
    return out, sidecar


def _safetensors(generator: torch.nn.Module, classes: int, out: Path) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous() for k, v in generator.state_dict().items()}
    save_file(tensors, str(out), metadata={"format": "pt", "producer": f"gan {__version__}"})


def _dynamic(classes: int) -> tuple:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return ({0: batch}, {0: batch}) if classes else ({0: batch},)


def _exported(generator: torch.nn.Module, classes: int, out: Path) -> None:
    try:
        program = torch.export.export(
            generator, example_inputs(generator, classes), dynamic_shapes=_dynamic(classes)
        )
    except Exception as exc:  # torch.export's many failure types: say why in one line
        raise GanError(f"torch.export could not trace this generator ({_first(exc)}).") from None
    torch.export.save(program, str(out))


def _onnx(generator: torch.nn.Module, classes: int, out: Path) -> None:
    import warnings

    names = ["z", "labels"] if classes else ["z"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                generator,
                example_inputs(generator, classes),
                str(out),
                dynamo=True,
                dynamic_shapes=_dynamic(classes),
                input_names=names,
                output_names=["images"],
                external_data=False,  # one self-contained file (generators are far below 2 GB)
                verbose=False,
            )
    except OSError:
        raise
    except Exception as exc:
        raise GanError(
            f"The ONNX exporter could not convert this generator ({_first(exc)})."
        ) from None


def _first(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


_WRITERS = {"safetensors": _safetensors, "exported": _exported, "onnx": _onnx}
