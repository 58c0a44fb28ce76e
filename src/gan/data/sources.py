"""Where a dataset's files come from: a local path, archives read in place (`archive_set`)
or an s3:// prefix (cached or in memory)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from loguru import logger

from gan.config import DataConfig
from gan.data.archive import ARCHIVE_SUFFIXES
from gan.data.archive_set import archives_named, open_archives
from gan.data.classes import chosen, unlabelled
from gan.data.decode import find_files, require_path
from gan.data.s3 import S3Settings, fetch, is_s3
from gan.data.s3_cache import NO_SUFFIX, safe_key
from gan.errors import GanError


def s3_settings(config: DataConfig) -> S3Settings:
    cache = Path(config.cache_dir).expanduser() if config.cache_dir else None
    return S3Settings(
        config.no_sign_request, config.s3_workers, cache, not config.no_cache, config.limit
    )


def gather(
    config: DataConfig,
    source: str,
    suffixes: tuple[str, ...],
    what: str,
    sniff: Callable[[Path], bool] | None = None,
) -> tuple[str, list[Any], list[str], dict[str, Any]]:
    """(display name, files, their paths below the source, summary extras) for a local
    folder/file, archives (a .zip or .tar file, a quoted glob of them, a folder of
    them and no images) or an s3:// prefix; locally also the files `sniff` accepts by
    their bytes (archive members are chosen by their suffix alone).

    Files are Paths, or MemoryFiles (with --no-cache) and archive Members that decoders
    open the same way.
    """
    if is_s3(source):
        # --classes before --limit: the whole prefix is listed, then cut
        settings = replace(s3_settings(config), limit=None if config.classes else config.limit)
        unnamed = (NO_SUFFIX,) if sniff is not None else ()  # keys can't be sniffed unread
        fetched = fetch(source, suffixes + unnamed, settings)
        name, files, relative, extra = source, fetched.files, fetched.relative, fetched.summary()
    else:
        name, files, relative, extra = _local(source, suffixes, what, sniff)
    if config.classes:
        files, relative = _of_classes(config.classes, files, relative, name, "archives" in extra)
    if config.limit is not None and (config.classes or not is_s3(source)):
        pairs = sorted(zip(relative, range(len(files)), strict=True))[: config.limit]
        relative, files = [r for r, _ in pairs], [files[i] for _, i in pairs]
    return name, files, relative, extra


def _local(
    source: str, suffixes: tuple[str, ...], what: str, sniff: Callable[[Path], bool] | None
) -> tuple[str, list[Any], list[str], dict[str, Any]]:
    """gather() for a local folder, file or archives."""
    archives = archives_named(source)
    root = Path(os.path.expanduser(source)) if archives else require_path(Path(source))
    found = [] if archives else find_files(root, suffixes + ARCHIVE_SUFFIXES, sniff)
    packed = [p for p in found if p.name.lower().endswith(ARCHIVE_SUFFIXES)]
    files: list[Any] = [p for p in found if not p.name.lower().endswith(ARCHIVE_SUFFIXES)]
    if files and packed:  # one walk finds both: a folder of images is read as before
        logger.warning(
            "Ignored {} archive(s) under {} beside its images (first: {}); give --data the "
            "archive, or a folder that holds archives alone, to read them.",
            len(packed),
            root,
            packed[0],
        )
    if not files and (archives := archives or packed):
        files, relative = open_archives(archives, suffixes, str(root))
        extra: dict[str, Any] = {"archives": len(archives)}
    else:
        relative = [p.relative_to(root).as_posix() if root.is_dir() else p.name for p in files]
        extra = {}
    if not files:
        raise GanError(f"No {what} ({', '.join(suffixes)}) were found in {root}; check the path.")
    return str(root), files, relative, extra


def _of_classes(
    wanted: tuple[str, ...], files: list[Any], relative: list[str], source: str, archived: bool
):
    """The files of the classes --classes names: a file's class is its subfolder, or for an
    archive member the label the archive gives it (dataset.json, .cls)."""
    if archived:
        labels = [getattr(f, "label", None) for f in files]
        folders = [None if label is None else str(label) for label in labels]
        how = "its archives carry no labels"
    else:
        folders = [r.split("/", 1)[0] if "/" in r else None for r in relative]
        how = "its images lie in no subfolders"
    if not any(folders):
        raise unlabelled(source, how)
    keep = chosen(wanted, [f for f in folders if f is not None], source)
    pairs = [(f, r) for f, r, c in zip(files, relative, folders, strict=True) if c in keep]
    return [f for f, _ in pairs], [r for _, r in pairs]


def _refusal(root: Path, inside: Path, name: str) -> str | None:
    """Why `name` may not be read under root, or None."""
    if not safe_key(name):
        return "names a path outside the dataset"
    try:
        path = root / name
        if not path.resolve().is_relative_to(inside):
            return "leads outside the dataset"
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None  # missing: the decoder reports it as unreadable
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop
        return f"cannot be looked up ({exc})"
    return None if stat.S_ISREG(mode) else "is not a regular file"


def files_inside(root: Path, names: Sequence[str]) -> tuple[list[int], list[tuple[str, str]]]:
    """Which of `names` (paths read from a file such as meta.csv) may be read under `root`:
    (their indices, (name, reason) for the others). A name must stay inside the root, also
    once symlinks are followed, and be a regular file, not a fifo, a device or a folder."""
    inside = root.resolve()
    kept: list[int] = []
    refused: list[tuple[str, str]] = []
    for index, name in enumerate(names):
        reason = _refusal(root, inside, name)
        if reason is None:
            kept.append(index)
        else:
            refused.append((name, reason))
    return kept, refused
