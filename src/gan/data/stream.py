"""Streaming ingest from s3://: each object is decoded (and resized) in the download worker
that fetched it, so raw objects never pile up, and the decoded result is cached.

- **--no-cache:** a worker holds one raw object at a time; peak memory is the decoded
  dataset plus the objects in flight (about --s3-workers of them).
- **Decoding** runs in the download workers, but never in more of them at once than there
  are cores: downloads wait on the network, decoding on the CPU.
- **With the cache:** raw objects land in the cache as before, and the decoded images are
  cached too, in one file keyed by the objects' ETags and the decoder's settings: a second
  run with the same objects and settings lists the prefix, reads that file, and neither
  downloads nor decodes anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger
from numpy.lib import format as npformat

from gan.atomic import atomic_file
from gan.data import s3
from gan.data.limits import dataset_problem, memory_budget, usable_cores
from gan.data.s3_cache import CacheError, Manifest, cached_path
from gan.errors import GanError

DECODED = ".decoded"  # the folder of decoded results inside the cache root
VERSION = 1  # bump when the decoded file's layout changes


@dataclass(frozen=True)
class Decoder:
    """How one object becomes images (a list: a volume gives many slices), and a text naming
    every setting that shapes the result (size, clipping, the decoder's own version)."""

    decode: Callable[[Any], list[np.ndarray]]
    settings: str


@dataclass
class Decoded:
    arrays: list[np.ndarray]  # every image, in object order
    counts: list[int]  # images per object (0: unreadable)
    relative: list[str]  # each object's key below the prefix
    failures: list[tuple[str, str]] = field(default_factory=list)  # (uri, reason)
    summary: dict[str, Any] = field(default_factory=dict)


def _digest(bucket: str, decoder: Decoder, objects: list[s3.S3Object]) -> str:
    """Names the decoded file: the objects (key, ETag, size) and the decoder's settings."""
    listing = [(o.key, o.etag, o.size) for o in objects]
    text = json.dumps([VERSION, bucket, decoder.settings, listing])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


_HEADERS = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}


def _plausible(path) -> bool:
    """Whether every member of the .npz declares exactly the bytes it holds (a damaged or
    planted file could declare any shape, and np.load allocates what the header declares)."""
    budget = memory_budget() or 1 << 62
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if sum(m.compress_size for m in members) > os.path.getsize(path):
            return False
        for member in members:
            if member.compress_type != zipfile.ZIP_STORED or member.file_size > budget:
                return False  # np.savez stores its members uncompressed
            with archive.open(member) as stream:
                read_header = _HEADERS.get(npformat.read_magic(stream))
                if read_header is None:
                    return False
                shape, _, dtype = read_header(stream)
                if dtype.hasobject or math.prod(shape) * dtype.itemsize != (
                    member.file_size - stream.tell()
                ):
                    return False
    return True


def _load_decoded(path) -> tuple[list[np.ndarray], list[int], list[tuple[str, str]]] | None:
    """The decoded images cached at `path`, or None: absent, or damaged (decode again)."""
    try:
        if not _plausible(path):
            return None
        with np.load(path, allow_pickle=False) as saved:
            images, counts = saved["images"], saved["counts"].tolist()
            failures = [(str(uri), str(why)) for uri, why in json.loads(str(saved["failures"]))]
        shaped = (images.ndim == 4 and images.dtype == np.uint8) or images.shape == (0,)
        if not shaped or len(images) != sum(counts):
            return None
    except (OSError, ValueError, KeyError, TypeError, EOFError, MemoryError, RecursionError,
            zipfile.BadZipFile):  # fmt: skip
        return None
    return list(images), counts, failures


def _save_decoded(path, arrays, counts, failures) -> None:
    buffer = io.BytesIO()
    images = np.stack(arrays) if arrays else np.zeros((0,), np.uint8)
    np.savez(
        buffer,
        images=images,
        counts=np.asarray(counts, np.int64),
        failures=np.asarray(json.dumps(failures)),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, durable=False) as f:
            f.write(buffer.getvalue())
    except OSError as exc:  # a cache that cannot be written costs time, not correctness
        logger.warning("Could not cache the decoded images in {} ({}).", path, exc)


def fetch_decoded(
    uri: str,
    suffixes: tuple[str, ...],
    settings: s3.S3Settings,
    decoder: Decoder,
    keys: set[str] | None = None,
) -> Decoded:
    """List `uri` (objects with a suffix, in `keys` when given, the first --limit), then
    download and decode them in the same workers; or read the decoded cache."""
    bucket, prefix = s3.split_uri(uri)
    client = s3.make_client(settings)
    objects = s3.select_objects(client, uri, suffixes, settings, keys)
    relative = [o.key[len(prefix) :].lstrip("/") for o in objects]
    cache_root = settings.cache_dir or s3.default_cache_dir()
    total = sum(o.size for o in objects)
    decoded_path = cache_root / DECODED / f"{_digest(bucket, decoder, objects)}.npz"
    summary = {"s3_uri": uri, "s3_objects": len(objects), "s3_bytes": total}
    if settings.use_cache and (found := _load_decoded(decoded_path)) is not None:
        logger.info("{}: {} objects, decoded images from the cache", uri, len(objects))
        arrays, counts, failures = found
        summary |= {"s3_downloaded": 0, "s3_cached": len(objects), "decoded_cached": True}
        return Decoded(arrays, counts, relative, failures, summary)

    arrays, counts, failures, fresh, unplaced = _ingest(
        client, uri, objects, settings, decoder, cache_root
    )
    if settings.use_cache and not unplaced:  # an object the cache had no room for: not final
        _save_decoded(decoded_path, arrays, counts, failures)
    summary |= {"s3_downloaded": fresh.count(False), "s3_cached": fresh.count(True)}
    return Decoded(arrays, counts, relative, failures, summary)


def _ingest(
    client, uri: str, objects: list[s3.S3Object], settings: s3.S3Settings, decoder: Decoder,
    cache_root: Path,
) -> tuple[list[np.ndarray], list[int], list[tuple[str, str]], list[bool], list[int]]:  # fmt: skip
    """Download (unless cached) and decode every object, in as many workers at once as
    there are cores: (arrays, counts, failures, which were cached, the indices of objects
    the cache had no place for)."""
    bucket, _ = s3.split_uri(uri)
    paths = [cached_path(cache_root, bucket, o.key) for o in objects]
    manifest = Manifest(cache_root, bucket)
    fresh = manifest.fresh_all(paths, objects) if settings.use_cache else [False] * len(paths)
    total, todo = sum(o.size for o in objects), fresh.count(False)
    logger.info("{}: {} objects, {:.1f} MB; {} to download", uri, len(objects), total / 1e6, todo)
    decoding = threading.BoundedSemaphore(usable_cores())  # downloads in parallel, decodes not
    unplaced: list[int] = []
    held, budget = [0, 0], memory_budget()  # images and bytes decoded so far; their bound
    counting = threading.Lock()

    def work(index: int) -> list[np.ndarray] | str:
        if budget is not None and held[1] > budget:  # the whole ingest is refused below
            return "not decoded: the images before it pass a dataset's share of memory"
        args = (client, bucket, objects[index], paths[index], manifest, settings, fresh[index])
        try:
            source = s3.make_local(*args)
        except CacheError as exc:  # this object has no place in the cache: skipped
            unplaced.append(index)
            return str(exc)
        try:
            with decoding:
                images = decoder.decode(source)
            with counting:
                held[0], held[1] = held[0] + len(images), held[1] + sum(a.nbytes for a in images)
            return images
        except Exception as exc:  # any decoder failure means "this object is unreadable"
            return f"{type(exc).__name__}: {exc}".strip()

    finish = manifest.save if settings.use_cache else lambda: None
    sizes = [o.size for o in objects]
    results = s3.in_parallel(uri, "ingest", sizes, work, settings.workers, finish)
    if budget is not None and held[1] > budget:
        raise GanError(
            f"The images of {uri} do not fit in memory ({dataset_problem(*held)}); use fewer "
            "objects (--limit), or a smaller --image-size."
        )
    return *_gather(bucket, objects, results), fresh, unplaced


def _gather(bucket: str, objects: list[s3.S3Object], results: list[Any]):
    """(every image in object order, images per object, (uri, reason) per failed object)."""
    arrays: list[np.ndarray] = []
    counts: list[int] = []
    failures: list[tuple[str, str]] = []
    for obj, result in zip(objects, results, strict=True):
        if isinstance(result, str):
            failures.append((f"s3://{bucket}/{obj.key}", result))
            counts.append(0)
        else:
            arrays.extend(result or [])
            counts.append(len(result or []))
    return arrays, counts, failures
