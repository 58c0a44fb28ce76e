"""s3:// sources: paginated listing, bounded parallel download into a verified local cache.

boto3's default credential chain applies (environment, AWS_PROFILE, instance role), as do
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 (MinIO, Ceph, a local server) and AWS_REGION.
Retries are botocore's own ("standard" mode), but for an object body cut short, which
botocore cannot retry (`s3_cache.get_body`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

from gan.data.limits import MAX_OBJECT_BYTES, bounded
from gan.data.s3_cache import (
    CacheError,
    Manifest,
    MemoryFile,
    S3Object,
    cacheable,
    cached_path,
    download,
    get_body,
    has_suffix,
    read_all,
)
from gan.errors import GanError

T = TypeVar("T")
DEFAULT_WORKERS = 32  # real S3 answers each GET after tens of ms: many requests in flight
_BUSY = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
         "500", "502", "503", "504"}  # fmt: skip


def is_s3(source: str | None) -> bool:
    return bool(source) and str(source).startswith("s3://")


def split_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix')."""
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise GanError(f"{uri} has no bucket name; write it as s3://bucket/prefix.")
    return bucket, prefix


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gan" / "s3"


@dataclass(frozen=True)
class S3Settings:
    no_sign_request: bool = False
    workers: int = DEFAULT_WORKERS
    cache_dir: Path | None = None  # None: default_cache_dir()
    use_cache: bool = True
    limit: int | None = None  # the first N objects after filtering, in key order


@dataclass
class Fetched:
    """What an s3:// source resolved to, and what it cost."""

    files: list[Any]  # Paths in the cache, or MemoryFiles with --no-cache
    uri: str
    objects: int
    bytes: int
    downloaded: int
    reused: int
    relative: list[str] = field(default_factory=list)  # each file's key below the prefix

    def summary(self) -> dict[str, Any]:
        return {
            "s3_uri": self.uri,
            "s3_objects": self.objects,
            "s3_bytes": self.bytes,
            "s3_downloaded": self.downloaded,
            "s3_cached": self.reused,
        }


def make_client(settings: S3Settings):
    """A thread-safe boto3 S3 client; unsigned requests with --no-sign-request."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    # botocore's standard retry mode (5 attempts) unless AWS_RETRY_MODE/AWS_MAX_ATTEMPTS say.
    user_retries = "AWS_RETRY_MODE" in os.environ or "AWS_MAX_ATTEMPTS" in os.environ
    config = Config(
        retries=None if user_retries else {"mode": "standard", "total_max_attempts": 5},
        max_pool_connections=max(10, settings.workers),
        signature_version=UNSIGNED if settings.no_sign_request else None,
        connect_timeout=10,
        read_timeout=60,
    )
    try:
        session = boto3.session.Session()
        return session.client("s3", region_name=os.environ.get("AWS_REGION"), config=config)
    except Exception as exc:  # profile not found, malformed config file, ...
        raise GanError(
            f"Could not set up the S3 client ({exc}); check your AWS settings."
        ) from None


def _refused(code: str, uri: str) -> GanError:
    """One sentence for an error S3 answered with (after botocore's retries)."""
    if code in ("NoSuchBucket",):
        return GanError(f"The bucket of {uri} does not exist; check the name.")
    if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
        return GanError(
            f"Access to {uri} was denied; check your credentials and the bucket's policy, "
            "or add --no-sign-request if the bucket is public."
        )
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        return GanError(f"The AWS credentials were rejected for {uri} ({code}); renew them.")
    if code in ("NoSuchKey", "404"):
        return GanError(f"{uri} does not exist in the bucket; check the key.")
    if code in _BUSY:
        return GanError(
            f"S3 answered {code} for {uri} on every retry (busy or unavailable); run "
            "again later (files already downloaded stay cached)."
        )
    return GanError(f"S3 refused a request for {uri} ({code}); check the URI and access.")


def explain(exc: Exception, uri: str) -> GanError:
    """Turn a boto3/botocore exception into one sentence with what to do."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError):
        return GanError(
            f"No AWS credentials were found for {uri}; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, or add --no-sign-request for a public bucket."
        )
    if isinstance(exc, bx.ClientError):
        return _refused(str(exc.response.get("Error", {}).get("Code", "")), uri)
    if isinstance(
        exc,
        bx.EndpointConnectionError
        | bx.ConnectionClosedError
        | bx.ReadTimeoutError
        | bx.ConnectTimeoutError
        | bx.IncompleteReadError
        | bx.ResponseStreamingError
        | ConnectionError,
    ):
        return GanError(
            f"The S3 endpoint stopped answering while reading {uri}; check the network or "
            "AWS_ENDPOINT_URL and run again (files already downloaded stay cached)."
        )
    if isinstance(exc, bx.BotoCoreError):
        return GanError(f"Reading {uri} failed ({exc}); check the S3 settings.")
    if isinstance(exc, OSError):  # the local cache: not writable, full, read-only
        return GanError(
            f"Writing {uri} into the local cache failed ({exc.strerror or exc}); free some "
            "space or point --cache-dir at a writable folder."
        )
    return GanError(f"Reading {uri} failed ({type(exc).__name__}: {exc}).")


def list_objects(client, bucket: str, prefix: str, suffixes: Iterable[str]) -> list[S3Object]:
    """Every object under the prefix whose key has a suffix (`has_suffix`; any number of pages)."""
    from gan.progress import ByteProgress

    suffixes = tuple(s.lower() for s in suffixes)
    uri = f"s3://{bucket}/{prefix}"
    found: list[S3Object] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        with ByteProgress("list", total=None) as progress:
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if has_suffix(key, suffixes) and not key.endswith("/"):
                        found.append(S3Object(key, int(item["Size"]), item["ETag"].strip('"')))
                progress.advance(len(page.get("Contents", [])), 0)
    except Exception as exc:
        raise explain(exc, uri) from None
    return sorted(found, key=lambda o: o.key)


def select_objects(
    client, uri: str, suffixes: Iterable[str], settings: S3Settings, keys: set[str] | None
) -> list[S3Object]:
    """The objects to ingest: a suffix, in `keys` when given, a key the cache can hold as a
    file (with or without the cache: the same objects either way), not too large to hold in
    memory with --no-cache, and the first --limit of them in key order."""
    bucket, prefix = split_uri(uri)
    objects = list_objects(client, bucket, prefix, suffixes)
    if keys is not None:
        objects = [o for o in objects if o.key in keys]
    in_memory = None if settings.use_cache else bounded(MAX_OBJECT_BYTES)
    objects = cacheable(objects, settings.cache_dir or default_cache_dir(), bucket, in_memory)
    if not objects:
        raise GanError(f"No images were found under {uri}; check the prefix and file types.")
    if settings.limit is not None:
        objects = sorted(objects, key=lambda o: o.key)[: settings.limit]
    return objects


def make_local(
    client, bucket: str, obj: S3Object, path: Path, manifest: Manifest, settings: S3Settings,
    fresh: bool
) -> Path | MemoryFile:  # fmt: skip
    """One object as a decoder can open it: its cached file (downloaded unless `fresh`), or
    with --no-cache its bytes in memory. Failures are one sentence."""
    try:
        if not settings.use_cache:
            body = get_body(client, bucket, obj, lambda stream: read_all(stream, obj.size))
            return MemoryFile(f"s3://{bucket}/{obj.key}", body)
        if not fresh:
            download(client, bucket, obj, path, manifest)
        return path
    except (GanError, CacheError):
        raise
    except Exception as exc:
        raise explain(exc, f"s3://{bucket}/{obj.key}") from None


def in_parallel(
    uri: str,
    label: str,
    sizes: list[int],
    work: Callable[[int], T],
    workers: int,
    finish: Callable[[], None],
) -> list[T]:
    """work(0..n-1) on `workers` threads with a progress bar, results in order. The first
    failure cancels what has not started; `finish` runs once every worker has stopped, on
    success or failure (the cache manifest keeps what did download)."""
    from gan.progress import ByteProgress

    results: list[Any] = [None] * len(sizes)
    with ByteProgress(label, len(sizes)) as progress, ThreadPoolExecutor(max(1, workers)) as pool:
        futures = {pool.submit(work, i): i for i in range(len(sizes))}
        try:
            for future in as_completed(futures):
                index = futures[future]
                results[index] = future.result()
                progress.advance(1, sizes[index])
        except Exception as exc:
            for pending in futures:
                pending.cancel()
            raise exc if isinstance(exc, GanError) else explain(exc, uri) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            finish()
    return results


def fetch(
    uri: str, suffixes: Iterable[str], settings: S3Settings, keys: set[str] | None = None
) -> Fetched:
    """List `uri`, keep keys with a suffix (and in `keys`, when given), and make them local."""
    bucket, prefix = split_uri(uri)
    client = make_client(settings)
    objects = select_objects(client, uri, suffixes, settings, keys)
    cache_root = settings.cache_dir or default_cache_dir()
    paths = [cached_path(cache_root, bucket, o.key) for o in objects]
    manifest = Manifest(cache_root, bucket)
    fresh = manifest.fresh_all(paths, objects) if settings.use_cache else [False] * len(paths)
    todo = [i for i, done in enumerate(fresh) if not done]
    total = sum(o.size for o in objects)
    logger.info(
        "{}: {} objects, {:.1f} MB; {} to download", uri, len(objects), total / 1e6, len(todo)
    )

    def get(index: int) -> Path | MemoryFile | str:
        i = todo[index]
        try:
            return make_local(client, bucket, objects[i], paths[i], manifest, settings, False)
        except CacheError as exc:  # this object only: skipped, the others go on
            return str(exc)

    sizes = [objects[i].size for i in todo]
    finish = manifest.save if settings.use_cache else lambda: None
    got = in_parallel(uri, "download", sizes, get, settings.workers, finish)
    failed = {todo[j]: why for j, why in enumerate(got) if isinstance(why, str)}
    keep = _kept(uri, objects, failed)
    files: list[Any] = paths if settings.use_cache else got  # --no-cache: every object, in order
    relative = [objects[i].key[len(prefix) :].lstrip("/") for i in keep]
    done, reused = len(todo) - len(failed), len(objects) - len(todo)
    return Fetched([files[i] for i in keep], uri, len(objects), total, done, reused, relative)


def _kept(uri: str, objects: list[S3Object], failed: dict[int, str]) -> list[int]:
    """The indices of the objects that did not fail; one warning about those that did."""
    if failed:
        index, why = min(failed.items())
        logger.warning("Skipped {} object(s) under {} (first: {}: {}).",
                       len(failed), uri, objects[index].key, why)  # fmt: skip
    return [i for i in range(len(objects)) if i not in failed]
