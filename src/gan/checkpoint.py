"""Checkpoints: dicts of tensors and plain values, written atomically, loaded without
unpickling, and verified against a SHA-256 digest of their content stored inside them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan.atomic import atomic_file, fsync_dir, is_regular, temp_name
from gan.errors import GanError

FORMAT_VERSION = 1
STEP_FILE = re.compile(r"^step-(\d+)\.pt$")
REQUIRED_KEYS = ("format_version", "step", "model", "generator", "config")
DIGEST = "digest"  # "sha256:<hex>" over everything else in the checkpoint


def content_digest(state: dict[str, Any]) -> str:
    """SHA-256 over the checkpoint's content: every tensor's dtype, shape and bytes and every
    plain value, keys in a fixed order. torch.save's zip does not check its CRCs on load,
    so this is what catches a flipped byte in the weights or the optimizer state."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != DIGEST})
    return f"sha256:{h.hexdigest()}"


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        h.update(f"D{len(value)};".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            _feed(h, key)
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)};".encode())
        for item in value:
            _feed(h, item)
    else:
        text = repr(value)
        h.update(f"V{type(value).__name__}{len(text)}:{text}".encode())


def step_path(run_dir: Path, step: int) -> Path:
    return run_dir / f"step-{step:07d}.pt"


def save_atomic(state: dict[str, Any], path: Path) -> Path:
    """Write through a temporary file in the same folder, fsync, then rename over `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {**state, DIGEST: content_digest(state)}
        with atomic_file(path) as f:
            torch.save(state, f)
    except OSError as exc:
        raise GanError(
            f"Could not write checkpoint {path} ({exc.strerror or exc}); free disk space or "
            "choose a writable --workdir. Earlier checkpoints are untouched."
        ) from None
    return path


def publish(source: Path, alias: Path) -> None:
    """Atomically make `alias` (e.g. checkpoints/last.pt) a copy of a complete checkpoint."""
    tmp = temp_name(alias)
    try:
        try:
            os.link(source, tmp)  # free on filesystems with hard links
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, alias)
    except OSError as exc:
        raise GanError(f"Could not update {alias} ({exc.strerror or exc}).") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    fsync_dir(alias.parent)


def step_files(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's step checkpoints, oldest first; a link, a FIFO or a
    folder of such a name is none (it is neither loaded nor pruned)."""
    if not run_dir.is_dir():
        return []
    found = [
        (int(m[1]), p)
        for p in run_dir.iterdir()
        if (m := STEP_FILE.match(p.name)) and is_regular(p)
    ]
    return sorted(found)


def prune(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` step checkpoints; returns what was removed."""
    removed = [path for _, path in step_files(run_dir)[:-keep]] if keep > 0 else []
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _migrate(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """Bring an older format up to FORMAT_VERSION, one explicit step at a time."""
    version = state["format_version"]
    if not isinstance(version, int) or version < 1:
        raise GanError(f"{path} has an unknown checkpoint format {version!r}; it cannot be used.")
    if version > FORMAT_VERSION:
        raise GanError(
            f"{path} was written by a newer gan (checkpoint format {version}, this one reads "
            f"up to {FORMAT_VERSION}); upgrade gan to load it."
        )
    # Migrations go here as `if version == N: state = _from_vN(state); version = N + 1`.
    return state


def _starts_like_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError as exc:
        raise GanError(f"Checkpoint {path} cannot be read ({exc.strerror or exc}).") from None


def zip_problem(path: Path) -> str | None:
    """Why a torch.save zip archive cannot be read safely, or None: torch.save stores its
    entries uncompressed, so entries that inflate beyond the file's own size (a zip bomb)
    are refused before torch reads them."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
        size = path.stat().st_size
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:80]}"
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries):
        return "it holds compressed entries, which torch.save never writes"
    if sum(e.file_size for e in entries) > size:
        return "its entries declare more bytes than the file holds"
    return None


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load a checkpoint with torch.load(weights_only=True); never runs pickled code."""
    path = Path(os.path.expanduser(str(path)))
    if not path.exists():
        raise GanError(f"Checkpoint {path} does not exist; check the path.")
    if path.is_dir():
        raise GanError(f"Checkpoint {path} is a folder; give the path of a .pt file.")
    if not path.is_file():  # a fifo or a device would block or never end
        raise GanError(f"Checkpoint {path} is not a regular file; give the path of a .pt file.")
    if not _starts_like_zip(path):  # gan (torch.save) always writes zip archives
        raise GanError(
            f"{path} is not a gan checkpoint (not a file written by torch.save); "
            "use a checkpoint written by gan train."
        )
    if (problem := zip_problem(path)) is not None:
        raise GanError(
            f"{path} is truncated or corrupt ({problem}); use another checkpoint, "
            "e.g. an earlier step-*.pt of the same run."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on foreign pickles; we explain below
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise GanError(
            f"{path} holds objects other than tensors and plain values, so it was not loaded "
            "(loading it could run code); use a checkpoint written by gan."
        ) from None
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        IndexError,
        KeyError,
    ) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise GanError(
            f"{path} is truncated or corrupt ({reason}); use another checkpoint, "
            "e.g. an earlier step-*.pt of the same run."
        ) from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise GanError(f"{path} is not a gan checkpoint (it lacks the expected fields).")
    _verify(state, path)
    state = _migrate(state, path)
    check_header(state, path)
    return state


MAX_CLASSES = 10_000
MAX_SIDE = 4096  # as --image-size allows
STEPS_MAX = 10**12


def check_header(state: dict[str, Any], path: Path | str) -> None:
    """The plain values a checkpoint carries are what gan writes: a run name that passes
    --run-name's check, a config that passes `Config.validate`, a model description of
    bounded size. A file that lies about them is refused before anything uses them."""
    problem = _header_problem(state)
    if problem is not None:
        raise GanError(
            f"{path} is not a valid gan checkpoint ({problem}); use a checkpoint written by "
            "gan train."
        )


def _header_problem(state: dict[str, Any]) -> str | None:
    from gan.config import FIELDS, Config
    from gan.config.values import run_name

    step, name = state["step"], state.get("run_name")
    if type(step) is not int or not 0 <= step <= STEPS_MAX:
        return f"its step {step!r} is not a whole number from 0"
    if name is not None:
        try:
            run_name(name)
        except ValueError:
            return f"its run name {str(name)[:60]!r} is not a folder name"
    for key in ("model", "generator", "config"):
        if not isinstance(state[key], dict):
            return f"its {key} is not a table"
    if not isinstance(state.get("generator_ema") or {}, dict):
        return "its generator_ema is not a table"
    if not isinstance(state.get("dataset", {}), dict):
        return "its dataset description is not a table"
    if not all(isinstance(v, dict) for v in state["config"].values()):
        return "its stored options are not tables of sections"
    try:
        Config.from_dict(state["config"]).validate()
        FIELDS["model.latent_dim"].check(state["model"].get("latent_dim"))
    except (GanError, ValueError, TypeError, AttributeError) as exc:
        return f"its stored options are invalid: {str(exc)[:120]}"
    return _model_problem(state["model"])


def _model_problem(model: dict[str, Any]) -> str | None:
    from gan.config.catalog import MODELS

    if model.get("name") not in MODELS.names():
        return f"its model {str(model.get('name'))[:40]!r} is not one of {', '.join(MODELS)}"
    shape = model.get("image_shape")
    ints = isinstance(shape, list | tuple) and all(type(v) is int for v in shape)
    if not ints or len(shape) != 3 or not 1 <= shape[0] <= 4:
        return f"its image shape {str(shape)[:40]} is not channels x height x width"
    if not (1 <= shape[1] <= MAX_SIDE and 1 <= shape[2] <= MAX_SIDE):
        return f"its image size {shape[1]}x{shape[2]} is beyond {MAX_SIDE}x{MAX_SIDE}"
    grow = model.get("grow", 0)
    if type(grow) is not int or not 0 <= grow <= 3:
        return f"its growth levels {str(grow)[:20]} are not 0 to 3"
    if grow and min(shape[1], shape[2]) < 4 * 2**grow:
        return f"its image size {shape[1]}x{shape[2]} is too small for {grow} growth levels"
    classes = model.get("classes")
    if classes is not None:
        names_ok = isinstance(classes, list | tuple) and all(
            isinstance(c, str) and 0 < len(c) <= 200 for c in classes
        )
        if not names_ok or not 1 <= len(classes) <= MAX_CLASSES:
            return f"its classes are not 1 to {MAX_CLASSES:,} names"
    return None


def _verify(state: dict[str, Any], path: Path) -> None:
    """Check the stored digest (and drop it from the state); a checkpoint from before
    digests loads unverified, with a note."""
    stored = state.pop(DIGEST, None)
    if stored is None:
        logger.info("{} has no content digest (an older gan wrote it): loaded unverified.", path)
        return
    if content_digest(state) != stored:
        raise GanError(
            f"{path} is corrupt: its content no longer matches the digest written with it; "
            "use another checkpoint, e.g. an earlier step-*.pt of the same run."
        )
