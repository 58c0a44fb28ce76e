"""s3:// sources: paginated listing, bounded parallel download into a verified local cache.

boto3's default credential chain applies (environment, AWS_PROFILE, instance role), as do
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 (MinIO, Ceph, a local server) and AWS_REGION.
Retries are botocore's own ("standard" mode), not a loop of ours.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from gan.data.s3_cache import Manifest, cached_path, download
from gan.errors import GanError

DEFAULT_WORKERS = 32  # real S3 answers each GET after tens of ms: many requests in flight


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


@dataclass(frozen=True)
class S3Object:
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


def explain(exc: Exception, uri: str) -> GanError:
    """Turn a boto3/botocore exception into one sentence with what to do."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError):
        return GanError(
            f"No AWS credentials were found for {uri}; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, or add --no-sign-request for a public bucket."
        )
    if isinstance(exc, bx.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
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
        return GanError(f"S3 refused a request for {uri} ({code}); check the URI and access.")
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
    return GanError(f"Reading {uri} failed ({type(exc).__name__}: {exc}).")


def list_objects(client, bucket: str, prefix: str, suffixes: Iterable[str]) -> list[S3Object]:
    """Every object under the prefix whose key ends with a suffix (any number of pages)."""
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
                    if key.lower().endswith(suffixes) and not key.endswith("/"):
                        found.append(S3Object(key, int(item["Size"]), item["ETag"].strip('"')))
                progress.advance(len(page.get("Contents", [])), 0)
    except Exception as exc:
        raise explain(exc, uri) from None
    return sorted(found, key=lambda o: o.key)


def _safe_key(key: str) -> bool:
    """Keys are paths in the cache: refuse ones that would land outside it."""
    parts = key.split("/")
    return not key.startswith("/") and not {"", ".", ".."} & set(parts) and "\\" not in key


def select_objects(
    client, uri: str, suffixes: Iterable[str], settings: S3Settings, keys: set[str] | None
) -> list[S3Object]:
    """The objects to ingest: a suffix, in `keys` when given, a key that stays inside the
    cache, and the first --limit of them in key order."""
    bucket, prefix = split_uri(uri)
    objects = list_objects(client, bucket, prefix, suffixes)
    if keys is not None:
        objects = [o for o in objects if o.key in keys]
    unsafe = [o.key for o in objects if not _safe_key(o.key)]
    if unsafe:
        logger.warning(
            "Skipped {} object(s) whose keys leave the prefix (first: {}).", len(unsafe), unsafe[0]
        )
        objects = [o for o in objects if _safe_key(o.key)]
    if not objects:
        raise GanError(f"No images were found under {uri}; check the prefix and file types.")
    if settings.limit is not None:
        objects = sorted(objects, key=lambda o: o.key)[: settings.limit]
    return objects


def fetch(
    uri: str, suffixes: Iterable[str], settings: S3Settings, keys: set[str] | None = None
) -> Fetched:
    """List `uri`, keep keys with a suffix (and in `keys`, when given), and make them local."""
    from gan.progress import ByteProgress

    bucket, prefix = split_uri(uri)
    client = make_client(settings)
    objects = select_objects(client, uri, suffixes, settings, keys)
    cache_root = settings.cache_dir or default_cache_dir()
    total = sum(o.size for o in objects)
    todo = objects
    manifest = Manifest(cache_root, bucket)
    if settings.use_cache:
        todo = [o for o in objects if not manifest.fresh(cached_path(cache_root, bucket, o.key), o)]
    logger.info(
        "{}: {} objects, {:.1f} MB; {} to download", uri, len(objects), total / 1e6, len(todo)
    )
    memory: dict[str, MemoryFile] = {}

    def get(obj: S3Object) -> int:
        try:
            if settings.use_cache:
                download(client, bucket, obj, cached_path(cache_root, bucket, obj.key), manifest)
            else:
                body = client.get_object(Bucket=bucket, Key=obj.key)["Body"].read()
                memory[obj.key] = MemoryFile(f"s3://{bucket}/{obj.key}", body)
        except GanError:
            raise
        except Exception as exc:
            raise explain(exc, f"s3://{bucket}/{obj.key}") from None
        return obj.size

    workers = max(1, settings.workers)
    with ByteProgress("download", len(todo)) as progress, ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(get, obj) for obj in todo]
        try:
            for future in as_completed(futures):
                progress.advance(1, future.result())
        except Exception as exc:
            for pending in futures:
                pending.cancel()
            raise exc if isinstance(exc, GanError) else explain(exc, uri) from None
        finally:  # what did download stays cached, even when the rest failed
            if settings.use_cache:
                pool.shutdown(wait=True, cancel_futures=True)
                manifest.save()
    if settings.use_cache:
        files: list[Any] = [cached_path(cache_root, bucket, o.key) for o in objects]
    else:
        files = [memory[o.key] for o in objects]
    relative = [o.key[len(prefix) :].lstrip("/") for o in objects]
    return Fetched(files, uri, len(objects), total, len(todo), len(objects) - len(todo), relative)
