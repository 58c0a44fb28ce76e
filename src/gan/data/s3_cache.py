"""Where s3:// objects are kept: the cache on disk, objects at `<cache>/<bucket>/<key>` with
one manifest per bucket that records the ETag and size each was downloaded with, or memory
(`MemoryFile`, with --no-cache)."""

from __future__ import annotations

import errno
import io
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

from gan.atomic import atomic_file
from gan.data.limits import MAX_NAME_BYTES, MAX_PATH_BYTES, TEMP_NAME_BYTES
from gan.walk import MAX_DATA_DEPTH

T = TypeVar("T")
BODY_ATTEMPTS = 3  # requests for one object whose body keeps being cut short
# What the local file system says when one object cannot have its place in the cache: a
# name too long, a folder where the file goes, a file where a folder goes (a key that is
# also another's folder, or a cache an earlier ingest left).
_NO_PLACE = {errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ELOOP}


@dataclass(frozen=True)
class S3Object:
    """One listed object: what the cache checks a file against."""

    key: str
    size: int
    etag: str


class MemoryFile:
    """An object held in memory (--no-cache) that decoders can open like a path."""

    def __init__(self, uri: str, data: bytes) -> None:
        self.uri, self.data = uri, data
        self.name = uri.rsplit("/", 1)[-1]

    def open(self, mode: str = "rb") -> io.BytesIO:
        return io.BytesIO(self.data)

    def read_bytes(self) -> bytes:
        return self.data

    def __str__(self) -> str:
        return self.uri


class CacheError(Exception):
    """One object cannot be written where the cache keeps it; that object is skipped."""


def cached_path(cache_root: Path, bucket: str, key: str) -> Path:
    return cache_root / bucket / key


NO_SUFFIX = ""  # among suffixes: also keys whose name has none (DICOM's IM0001, 1.2.840.5.7)


def has_suffix(key: str, suffixes: tuple[str, ...]) -> bool:
    """Whether a key's name ends with one of `suffixes` (lower case), or has no suffix (no
    dot, or digits after its last one) where `NO_SUFFIX` is one of them."""
    name = key.rsplit("/", 1)[-1].lower()
    if name.endswith(tuple(s for s in suffixes if s)):
        return True
    if NO_SUFFIX not in suffixes or not name:
        return False
    _, dot, tail = name.rpartition(".")
    return not dot or tail.isdigit()


def safe_key(key: str) -> bool:
    """Keys (and file names read from meta.csv) are paths below a root: refuse ones that
    would land outside it."""
    parts = key.split("/")
    return not key.startswith("/") and not {"", ".", ".."} & set(parts) and "\\" not in key


def refusals(cache_root: Path, bucket: str, keys: Iterable[str]) -> dict[str, str]:
    """{key: why} for the keys the cache cannot hold as files: ones that would leave it, a
    name or path too long for the file system, a key that is also a folder of another."""
    keys = list(keys)
    folders = {key.rsplit("/", n)[0] for key in keys for n in range(1, key.count("/") + 1)}
    refused = {}
    for key in keys:
        if not safe_key(key):
            refused[key] = "the key leaves the prefix"
        elif key.count("/") > MAX_DATA_DEPTH:
            refused[key] = f"the key is nested deeper than {MAX_DATA_DEPTH} folders"
        elif max(len(os.fsencode(part)) for part in key.split("/")) > (
            MAX_NAME_BYTES - TEMP_NAME_BYTES
        ):
            refused[key] = "a part of the key is too long for a file name"
        elif len(os.fsencode(cached_path(cache_root, bucket, key))) > (
            MAX_PATH_BYTES - TEMP_NAME_BYTES
        ):
            refused[key] = "the key is too long for a path in the cache"
        elif key in folders:
            refused[key] = "the key is also the folder of other keys"
    return refused


def cacheable(
    objects: list[S3Object], cache_root: Path, bucket: str, in_memory: int | None
) -> list[S3Object]:
    """The objects the cache can hold as files (checked with or without the cache, so that
    both ingest the same objects) and, with `in_memory` bytes (--no-cache), that fit in
    them; the others are skipped with one warning."""
    refused = refusals(cache_root, bucket, [o.key for o in objects])
    if in_memory is not None:
        too_big = f"larger than the {in_memory / 1e9:.1f} GB --no-cache holds in memory"
        refused |= {o.key: too_big for o in objects if o.size > in_memory and o.key not in refused}
    if refused:
        key, why = next(iter(refused.items()))
        logger.warning("Skipped {} object(s) whose keys leave the prefix or cannot be cached "
                       "(first: {}: {}).", len(refused), key, why)  # fmt: skip
    return [o for o in objects if o.key not in refused]


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
        except (OSError, ValueError, RecursionError):  # torn, edited, or nested past the stack
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


def _no_place(exc: OSError, path: Path) -> Exception:
    """A CacheError when the file system has no place for this one file, else `exc`."""
    if exc.errno in _NO_PLACE:
        return CacheError(f"cannot be cached as {path} ({exc.strerror or exc})")
    return exc


def get_body(client, bucket: str, obj: S3Object, consume: Callable[[Any], T]) -> T:
    """consume(the object's streaming body). botocore retries a request that fails, but not a
    body cut short, which it reads after the call returned: such an object is requested
    again, BODY_ATTEMPTS times in all (as boto3's own download_file does)."""
    from botocore import exceptions as bx

    cut = (bx.ResponseStreamingError, bx.IncompleteReadError, bx.ReadTimeoutError,
           bx.ConnectionClosedError, ConnectionError)  # fmt: skip
    for attempt in range(1, BODY_ATTEMPTS + 1):
        response = client.get_object(Bucket=bucket, Key=obj.key, IfMatch=obj.etag)
        try:
            return consume(response["Body"])
        except cut:
            if attempt == BODY_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def read_all(body: Any, expected: int) -> bytes:
    """The whole body, which must have the listed size (a cut one may end without error)."""
    data = body.read()
    if len(data) != expected:
        raise ConnectionError("object ended early")
    return data


def _write(body: Any, path: Path, expected: int) -> None:
    """The body to a temporary name, then renamed: a partial file never looks complete."""
    try:
        # Not fsynced: a cache entry lost in a power cut is fetched again (size and ETag).
        with atomic_file(path, durable=False) as f:
            size = 0
            for chunk in body.iter_chunks(1 << 20):
                size += f.write(chunk)
            if size != expected:
                raise ConnectionError("object ended early")
    except OSError as exc:
        raise _no_place(exc, path) from None


def download(client, bucket: str, obj: S3Object, path: Path, manifest: Manifest) -> None:
    """Download the object into the cache and record it in the manifest."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _no_place(exc, path) from None
    manifest.forget(obj.key)  # the old ETag must not vouch for the new file
    get_body(client, bucket, obj, lambda body: _write(body, path, obj.size))
    manifest.record(obj)
