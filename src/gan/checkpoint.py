"""Checkpoints: dicts of tensors and plain values, written atomically, loaded without
unpickling, and verified against a SHA-256 digest of their content stored inside them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import secrets
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan.atomic import atomic_file, fsync_dir, is_regular, temp_name
from gan.checkpoint_checks import check_header, structure_problem
from gan.errors import GanError

FORMAT_VERSION = 2  # 2: each part of a run under its name (`PARTS`); 1: one flat table
STEP_FILE = re.compile(r"^step-(\d+)\.pt$")
REQUIRED_KEYS = ("format_version", "step", "model", "config")
# The parts of a run a checkpoint holds, each under its name, and (for format 1's flat
# table) the keys each part owns.
PARTS = {
    "runtime": (
        "generator",
        "generator_ema",
        "ema_updates",
        "discriminator",
        "opt_g",
        "opt_d",
        "scaler_g",
        "scaler_d",
    ),
    "recipe": ("augment_p", "augment_rng", "ada_signs", "ada_seen", "noise_rng"),
    "draws": ("epoch", "images_seen", "latent_rng"),
    "grids": ("fixed_latents",),
    "reporter": ("best_fid",),
    "loop": ("rng", "rng_ranks", "world_size"),
}
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
    tmp = temp_name(alias, secrets.token_hex(4))  # os.link fails on a name already there
    try:
        try:
            os.link(source, tmp)  # free on filesystems with hard links
        except OSError:  # none here: a copy, through a temporary file created exclusively
            with open(source, "rb") as src, atomic_file(alias) as f:
                shutil.copyfileobj(src, f)
            return
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
    if version == 1:
        state, version = _from_v1(state), 2
    # Later migrations go here as `if version == N: state = _from_vN(state); version = N + 1`.
    return state


def _from_v1(state: dict[str, Any]) -> dict[str, Any]:
    """Format 1 held every part's state in one flat table: each part's keys move under its
    name, and what the schedule recorded (ADA's ramp, a --time-budget's warm-up) under
    "schedule" (the rest of a format-1 run's schedule follows from its config)."""
    flat = dict(state)
    moved = {part: {k: flat.pop(k) for k in keys if k in flat} for part, keys in PARTS.items()}
    schedule = {"fitted": flat.pop("time_budget", None)}
    if "ada_ramp_images" in flat:
        schedule["ada_ramp_images"] = float(flat.pop("ada_ramp_images"))
    return {**flat, "format_version": 2, "schedule": schedule, **moved}


def generator_weights(state: dict[str, Any]) -> dict[str, Any]:
    """G's weights a checkpoint's samples come from: its moving average, where it has one."""
    runtime = state["runtime"]
    return runtime.get("generator_ema") or runtime["generator"]


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
    except Exception as exc:  # noqa: BLE001 - BadZipFile, NotImplementedError, struct.error, ...
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
    state = _unpickle(path)
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise GanError(f"{path} is not a gan checkpoint (it lacks the expected fields).")
    try:  # what the file chose is checked before the digest walks it
        problem = structure_problem(state)
    except (RecursionError, MemoryError, OverflowError, ValueError, TypeError) as exc:
        problem = f"{type(exc).__name__} while checking it"
    if problem is not None:
        raise GanError(
            f"{path} is not a valid gan checkpoint ({problem}); use a checkpoint written by "
            "gan train."
        )
    _verify(state, path)
    state = _migrate(state, path)
    check_header(state, path)
    return state


def _unpickle(path: Path) -> Any:
    """torch.load(weights_only=True): tensors and plain values only; whatever goes wrong
    inside it (a truncated zip, a pickle nested too deep, a struct it cannot unpack) is
    one sentence."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on foreign pickles; we explain below
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise GanError(
            f"{path} holds objects other than tensors and plain values, so it was not loaded "
            "(loading it could run code); use a checkpoint written by gan."
        ) from None
    except Exception as exc:  # noqa: BLE001 - anything a malformed file provokes
        text = str(exc).strip()
        reason = text.splitlines()[0][:120] if text else type(exc).__name__
        raise GanError(
            f"{path} is truncated or corrupt ({reason}); use another checkpoint, "
            "e.g. an earlier step-*.pt of the same run."
        ) from None


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
