"""The s3:// cache on disk: objects at `<cache>/<bucket>/<key>`, and one manifest per
bucket that records the ETag and size each was downloaded with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from gan.atomic import atomic_file

if TYPE_CHECKING:
    from gan.data.s3 import S3Object


def cached_path(cache_root: Path, bucket: str, key: str) -> Path:
    return cache_root / bucket / key


MANIFEST = ".gan-manifest.json"  # per bucket in the cache: {key: [etag, size]}


class Manifest:
    """The ETag and size of every cached object of one bucket, in one file (one write per
    fetch instead of a sidecar file per object). A cached file counts only if its entry
    matches the object's ETag and size and the file has that size.

    Entries change in memory while workers download; `save` merges them into the file under
    an exclusive lock, so processes sharing the cache keep each other's entries. A download
    whose entry never reached the file (a process killed before saving) is fetched again.
    """

    def __init__(self, cache_root: Path, bucket: str) -> None:
        self.path = cache_root / bucket / MANIFEST
        self.entries = self._read()
        self.changed: dict[str, list | None] = {}

    def _read(self) -> dict[str, list]:
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def fresh(self, path: Path, obj: S3Object) -> bool:
        if self.entries.get(obj.key) != [obj.etag, obj.size]:
            return False
        try:
            return path.stat().st_size == obj.size
        except OSError:
            return False

    def fresh_all(self, paths: list[Path], objects: list[S3Object]) -> list[bool]:
        return [self.fresh(p, o) for p, o in zip(paths, objects, strict=True)]

    def forget(self, key: str) -> None:
        self.entries.pop(key, None)
        self.changed[key] = None

    def record(self, obj: S3Object) -> None:
        self.entries[obj.key] = self.changed[obj.key] = [obj.etag, obj.size]

    def save(self) -> None:
        if not self.changed:
            return
        import fcntl

        changed, self.changed = self.changed, {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(MANIFEST + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = self._read()
            for key, entry in changed.items():
                if entry is None:
                    merged.pop(key, None)
                else:
                    merged[key] = entry
            with atomic_file(self.path, durable=False) as f:
                f.write(json.dumps(merged, separators=(",", ":")).encode())
        self.entries = merged


def download(client, bucket: str, obj: S3Object, path: Path, manifest: Manifest) -> None:
    """Download to a temporary name, then rename: a partial file never looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest.forget(obj.key)  # the old ETag must not vouch for the new file
    response = client.get_object(Bucket=bucket, Key=obj.key, IfMatch=obj.etag)
    # Not fsynced: a cache entry lost in a power cut is fetched again (size and ETag).
    with atomic_file(path, durable=False) as f:
        size = 0
        for chunk in response["Body"].iter_chunks(1 << 20):
            size += f.write(chunk)
        if size != obj.size:
            raise ConnectionError("object ended early")
    manifest.record(obj)
