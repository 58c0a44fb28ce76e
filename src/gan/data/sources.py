"""Where a dataset's files come from: a local path, archives read in place (`archive_set`)
or an s3:// prefix (cached or in memory)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gan.config import DataConfig
from gan.data.archive_set import archives_in, archives_named, open_archives
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
        unnamed = (NO_SUFFIX,) if sniff is not None else ()  # keys can't be sniffed unread
        fetched = fetch(source, suffixes + unnamed, s3_settings(config))
        return source, fetched.files, fetched.relative, fetched.summary()
    archives = archives_named(source)
    root = Path(os.path.expanduser(source)) if archives else require_path(Path(source))
    files: list[Any] = [] if archives else find_files(root, suffixes, sniff)
    if not files and (archives := archives or archives_in(root)):
        files, relative = open_archives(archives, suffixes, str(root))
        extra = {"archives": len(archives)}
    else:
        relative = [p.relative_to(root).as_posix() if root.is_dir() else p.name for p in files]
        extra = {}
    if not files:
        raise GanError(f"No {what} ({', '.join(suffixes)}) were found in {root}; check the path.")
    if config.limit is not None:
        pairs = sorted(zip(relative, range(len(files)), strict=True))[: config.limit]
        relative, files = [r for r, _ in pairs], [files[i] for _, i in pairs]
    return str(root), files, relative, extra


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
