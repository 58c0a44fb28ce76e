"""`bps`: NASA BPS fluorescence microscopy of irradiated nuclei (16-bit TIFF + meta.csv).

Layout (the public bucket s3://nasa-bps-training-data/Microscopy/train/, or a local copy):
meta.csv with columns filename, dose_Gy, particle_type (Fe, X-ray), hr_post_exposure
(4, 24, 48), next to single-channel 16-bit TIFF crops of varying size.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from loguru import logger

from gan.config import DataConfig
from gan.data import ImageData, label_images
from gan.data.classes import chosen
from gan.data.decode import decode_all, report_failures, require_path, stack
from gan.data.limits import MAX_TABLE_BYTES
from gan.data.s3 import explain, is_s3, make_client, split_uri
from gan.data.s3_cache import safe_key
from gan.data.sources import files_inside, s3_settings
from gan.data.stream import Decoder, fetch_decoded
from gan.data.tiff import first_tiff_page
from gan.errors import GanError

PUBLIC_PREFIX = "s3://nasa-bps-training-data/Microscopy/train/"
COLUMNS = ("filename", "dose_Gy", "particle_type", "hr_post_exposure")
TIFF_SUFFIXES = (".tif", ".tiff")


def _meta_bytes(config: DataConfig, source: str) -> tuple[bytes, str]:
    """meta.csv's bytes (refused when over MAX_TABLE_BYTES) and where it lies."""
    too_big = "{} is {:,} bytes, more than a meta.csv may be ({:,}); check that it is one."
    if is_s3(source):
        bucket, prefix = split_uri(source)
        key = prefix.rstrip("/") + "/meta.csv" if prefix else "meta.csv"
        where, client = f"s3://{bucket}/{key}", make_client(s3_settings(config))
        try:
            response = client.get_object(Bucket=bucket, Key=key)
            if response["ContentLength"] > MAX_TABLE_BYTES:
                raise GanError(too_big.format(where, response["ContentLength"], MAX_TABLE_BYTES))
            return response["Body"].read(), where
        except GanError:
            raise
        except Exception as exc:
            error = explain(exc, where)
            if "does not exist" in str(error):
                raise GanError(
                    f"{where} was not found; BPS data needs a meta.csv next to the TIFF images."
                ) from None
            raise error from None
    path = require_path(Path(source)) / "meta.csv"
    if not path.is_file():
        raise GanError(f"{path} was not found; BPS data needs a meta.csv next to the TIFF images.")
    if path.stat().st_size > MAX_TABLE_BYTES:
        raise GanError(too_big.format(path, path.stat().st_size, MAX_TABLE_BYTES))
    return path.read_bytes(), str(path)


def _meta_text(config: DataConfig, source: str) -> str:
    data, where = _meta_bytes(config, source)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GanError(
            f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8."
        ) from None


def read_meta(text: str, where: str) -> list[dict[str, Any]]:
    """Parse meta.csv into typed rows; say which columns are missing."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise GanError(
                f"{where} lacks the column(s) {', '.join(missing)}; BPS needs {', '.join(COLUMNS)}."
            )
        return [_row(row, where, line) for line, row in enumerate(reader, start=2)]
    except csv.Error as exc:
        raise GanError(f"{where} cannot be read as CSV ({exc}); fix it.") from None


def _row(row: dict[str, Any], where: str, line: int) -> dict[str, Any]:
    try:
        return {
            "filename": row["filename"].strip(),
            "dose_Gy": float(row["dose_Gy"]),
            "particle_type": row["particle_type"].strip(),
            "hr_post_exposure": int(float(row["hr_post_exposure"])),
        }
    except (TypeError, ValueError, OverflowError):
        raise GanError(f"{where} line {line} has a malformed value; fix or remove it.") from None


def split_of(filename: str, fractions: tuple[float, float, float]) -> str:
    """train/val/test from a hash of the file name: stable across runs and machines."""
    digest = hashlib.sha256(filename.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "val" if u < fractions[0] + fractions[1] else "test"


def select(rows: list[dict[str, Any]], config: DataConfig) -> list[dict[str, Any]]:
    """Apply --particle, --dose, --hours and --split."""
    out = []
    for row in rows:
        if config.particle and row["particle_type"].lower() != config.particle.lower():
            continue
        if config.dose and not any(abs(row["dose_Gy"] - d) < 1e-6 for d in config.dose):
            continue
        if config.hours and row["hr_post_exposure"] not in config.hours:
            continue
        if (
            config.split != "all"
            and split_of(row["filename"], config.split_fractions) != config.split
        ):
            continue
        out.append(row)
    return out


def meta_summary(config: DataConfig) -> dict[str, Any]:
    """What meta.csv holds, from meta.csv alone (no image is read or downloaded): images per
    particle x dose x hours (after --particle/--dose/--hours), each with its split sizes."""
    source = config.source or PUBLIC_PREFIX
    if config.source is None:
        config = DataConfig(**{**vars(config), "no_sign_request": True})
    rows = read_meta(_meta_text(config, source), f"meta.csv of {source}")
    unsplit = DataConfig(**{**vars(config), "split": "all"})
    kept = select(rows, unsplit)
    groups: dict[tuple[str, float, int], dict[str, int]] = {}
    splits = {"train": 0, "val": 0, "test": 0}
    for row in kept:
        key = (row["particle_type"], row["dose_Gy"], row["hr_post_exposure"])
        part = split_of(row["filename"], config.split_fractions)
        group = groups.setdefault(key, {"images": 0, "train": 0, "val": 0, "test": 0})
        group["images"] += 1
        group[part] += 1
        splits[part] += 1
    matched = len(select(rows, config))
    return {
        "source": source,
        "rows": len(rows),
        "filters": _describe(config),
        "matched": min(matched, config.limit) if config.limit is not None else matched,
        "split_fractions": list(config.split_fractions),
        "splits": splits,
        "groups": [
            {"particle": p, "dose_Gy": d, "hours": h, **counts}
            for (p, d, h), counts in sorted(
                groups.items(), key=lambda kv: (kv[0][0].lower(), *kv[0][1:])
            )
        ],
    }


def decode_tiff(file: Any, size: tuple[int, int], clip: tuple[float, float]) -> np.ndarray:
    """16-bit TIFF -> percentile-clipped float in [0, 1] -> resized (antialiased) -> uint8."""
    raw = np.squeeze(first_tiff_page(file))
    if raw.ndim == 3:  # a stray channel axis: keep the first plane
        raw = raw[0] if raw.shape[0] < raw.shape[-1] else raw[..., 0]
    if raw.ndim != 2 or min(raw.shape) < 2:
        raise ValueError(f"expected a 2-D image, got shape {raw.shape}")
    low, high = np.percentile(raw, clip)  # on the stored values: one copy, not a float one
    image = raw.astype(np.float32)  # in place from here: one float copy per image
    if high > low:
        image -= low
        image *= 1.0 / (high - low)
        np.clip(image, 0.0, 1.0, out=image)
    else:
        image[:] = 0.0
    tensor = torch.from_numpy(image)[None, None]
    resized = F.interpolate(tensor, size=size, mode="bilinear", antialias=True, align_corners=False)
    return (resized[0] * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


def _describe(config: DataConfig) -> str:
    parts = [f"--particle {config.particle}"] if config.particle else []
    parts += [f"--dose {d:g}" for d in config.dose] + [f"--hours {h}" for h in config.hours]
    parts += [f"--split {config.split}"] if config.split != "all" else []
    return " ".join(parts) or "no filters"


def _from_s3(config: DataConfig, source: str, rows: list[dict[str, Any]], decoder: Decoder):
    """(arrays, images per file, file names, skipped, summary) of the rows' objects."""
    bucket, prefix = split_uri(source)
    base = prefix.rstrip("/") + "/" if prefix else ""
    refused = [(r["filename"], "names a key outside the prefix") for r in rows
               if not safe_key(r["filename"])]  # fmt: skip
    wanted = {base + r["filename"] for r in rows if safe_key(r["filename"])}
    decoded = fetch_decoded(source, TIFF_SUFFIXES, s3_settings(config), decoder, wanted)
    extra = dict(decoded.summary)
    names = decoded.relative
    skipped = report_failures(refused + decoded.failures, source)
    if len(names) < len(wanted):
        logger.warning(
            "{} file(s) named in meta.csv are not in {}.", len(wanted) - len(names), source
        )
        extra["missing_files"] = len(wanted) - len(names)
    return decoded.arrays, decoded.counts, names, skipped, extra


def _from_folder(source: str, rows: list[dict[str, Any]], decode: Callable[[Any], Any]):
    """(arrays, images per file, file names, skipped, summary) of the rows' files; names
    that leave the folder or are not regular files are skipped with the unreadable ones."""
    root = require_path(Path(source))
    kept, refused = files_inside(root, [r["filename"] for r in rows])
    names = [rows[i]["filename"] for i in kept]
    counts: list[int] = []
    arrays, skipped = decode_all([root / n for n in names], decode, source, counts, refused)
    return arrays, counts, names, skipped, {}


def load_bps(config: DataConfig, size: tuple[int, int] | None) -> ImageData:
    source = config.source or PUBLIC_PREFIX
    if config.source is None:  # the public bucket is read anonymously
        config = DataConfig(**{**vars(config), "no_sign_request": True})
    rows = select(read_meta(_meta_text(config, source), f"meta.csv of {source}"), config)
    rows.sort(key=lambda r: r["filename"])  # one order, wherever the data lives
    if not rows:
        raise GanError(f"No BPS images in {source} match {_describe(config)}; relax the filters.")
    if config.classes:  # the --condition-on values asked for, before --limit
        keep = chosen(config.classes, [_label(r, config.condition_on) for r in rows], source)
        rows = [r for r in rows if _label(r, config.condition_on) in keep]
    matched = len(rows)
    rows = rows[: config.limit] if config.limit is not None else rows
    size, clip = size or (128, 128), config.clip_percentiles
    extra: dict[str, Any] = {"filters": _describe(config), "matched": matched}
    if config.limit is not None:
        extra["limit"] = config.limit
    if is_s3(source):  # decoded in the download workers, as the objects arrive
        decoder = Decoder(lambda f: [decode_tiff(f, size, clip)], f"bps-tiff:{size}:{clip}")
        found = _from_s3(config, source, rows, decoder)
    else:
        found = _from_folder(source, rows, lambda f: [decode_tiff(f, size, clip)])
    arrays, counts, names, skipped, more = found
    extra |= more
    if skipped:
        extra["skipped_files"] = skipped
    data = ImageData(stack(arrays, source), "bps", source, extra)
    # Labels: the --condition-on column of each decoded file's meta.csv row.
    by_name = {r["filename"]: r for r in rows}
    labels = [_label(by_name[name], config.condition_on) for name in names]
    data.labels, data.classes = label_images(labels, counts, _label_order(config.condition_on))
    extra["condition_on"] = config.condition_on
    return data


_COLUMN = {"particle": "particle_type", "dose": "dose_Gy", "hours": "hr_post_exposure"}


def _label(row: dict[str, Any], condition_on: str) -> str:
    value = row[_COLUMN[condition_on]]
    return f"{value:g}" if isinstance(value, float) else str(value)


def _label_order(condition_on: str):
    """Particles by name; doses and hours by value."""
    return str.lower if condition_on == "particle" else float
