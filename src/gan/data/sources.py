"""Where a dataset's files come from: a local path or an s3:// prefix (cached or in memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gan.config import DataConfig
from gan.data.decode import find_files, require_path
from gan.data.s3 import S3Settings, fetch, is_s3
from gan.errors import GanError


def s3_settings(config: DataConfig) -> S3Settings:
    cache = Path(config.cache_dir).expanduser() if config.cache_dir else None
    return S3Settings(
        config.no_sign_request, config.s3_workers, cache, not config.no_cache, config.limit
    )


def gather(
    config: DataConfig, source: str, suffixes: tuple[str, ...], what: str
) -> tuple[str, list[Any], list[str], dict[str, Any]]:
    """(display name, files, their paths below the source, summary extras) for a local
    folder/file or an s3:// prefix.

    Files are Paths, or MemoryFiles (with --no-cache) that decoders open the same way.
    """
    if is_s3(source):
        fetched = fetch(source, suffixes, s3_settings(config))
        return source, fetched.files, fetched.relative, fetched.summary()
    root = require_path(Path(source))
    files = find_files(root, suffixes)
    if not files:
        raise GanError(f"No {what} ({', '.join(suffixes)}) were found in {root}; check the path.")
    relative = [p.relative_to(root).as_posix() if root.is_dir() else p.name for p in files]
    if config.limit is not None:
        pairs = sorted(zip(relative, files, strict=True))[: config.limit]
        relative, files = [r for r, _ in pairs], [f for _, f in pairs]
    return str(root), files, relative, {}
