"""A real S3 endpoint on 127.0.0.1 for the tests: moto's server behind a small counting proxy.

Loaded by test modules with `pytest_plugins = ["tests.s3_server"]`, which provides the fixtures:

- `moto_endpoint` (session): a `moto.server.ThreadedMotoServer` on a free port; its URL.
- `s3_proxy` (session): a tiny HTTP proxy in front of it that records every request (method,
  key, whether it was signed) and can be told to cut response bodies short after N object
  downloads, which is what a client sees when the server dies mid-transfer.
- `s3` (function): wipes the server's state (POST /moto-api/reset) and the proxy's log, points
  boto3 at the proxy through the environment (AWS_ENDPOINT_URL, testing credentials, region;
  inherited by subprocesses too), keeps every cache inside tmp_path (HOME, XDG_CACHE_HOME) and
  makes sure no real AWS profile, config file or instance role is consulted.

`make_bps_dataset` builds a small NASA BPS-like dataset (meta.csv + 16-bit nucleus TIFFs)
in a local folder or under an s3:// prefix.

PYTEST_DONT_REWRITE (plain helpers, imported by the test module before it loads as a plugin)
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import logging
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pytest

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


# ---- the counting proxy ----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    bucket: str
    key: str  # "" for bucket-level requests (listing)
    query: dict[str, list[str]]
    signed: bool  # an Authorization header (or a presigned URL) was sent
    status: int
    cut: bool  # the response body was cut short on purpose

    @property
    def is_object_get(self) -> bool:
        return self.method == "GET" and bool(self.key) and not self.query

    @property
    def is_listing(self) -> bool:
        return self.method == "GET" and not self.key and "list-type" in self.query


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards the client, like a real endpoint

    def log_message(self, format: str, *args: Any) -> None:  # silence the per-request lines
        pass

    def _forward(self) -> None:
        proxy: CountingProxy = self.server.proxy  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if proxy.dead:  # a dead server: the connection drops without an answer
            proxy.dropped += 1
            self.close_connection = True
            return
        upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders(body)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()

        url = urlsplit(self.path)
        bucket, _, key = url.path.lstrip("/").partition("/")
        signed = "Authorization" in self.headers or "Signature=" in (url.query or "")
        request = Request(
            self.command, unquote(bucket), unquote(key), parse_qs(url.query), signed,
            response.status, cut=False,
        )  # fmt: skip
        cut = proxy.record(request)

        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data[: len(data) // 2] if cut else data)
        self.wfile.flush()
        if cut:  # the server "dies": half a body, then the connection drops
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


class CountingProxy:
    """An HTTP proxy for boto3 traffic (path-style S3 on 127.0.0.1) that logs each request."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._log: list[Request] = []
        self._die_after: int | None = None
        self.dead = False
        self.dropped = 0  # requests refused while dead
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def record(self, request: Request) -> bool:
        """Log a request; True if its body must be cut short (see die_after)."""
        with self._lock:
            cut = (
                self._die_after is not None
                and request.is_object_get
                and request.status == 200
                and sum(r.is_object_get and not r.cut for r in self._log) >= self._die_after
            )
            self._log.append(Request(**{**vars(request), "cut": cut}))
            self.dead = self.dead or cut
        return cut

    def die_after(self, complete_downloads: int | None) -> None:
        """Let this many object downloads complete, then die: responses still in flight are
        cut off halfway (the client has read part of a body), and every later request's
        connection drops without an answer (the client retries, then gives up)."""
        with self._lock:
            self._die_after = complete_downloads

    def reset(self) -> None:
        """Alive again, with an empty log."""
        with self._lock:
            self._log.clear()
            self._die_after = None
            self.dead = False
            self.dropped = 0

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._log)

    def object_gets(self, bucket: str | None = None) -> list[str]:
        """Keys of the objects fetched with GET (in order), optionally of one bucket."""
        return [
            r.key
            for r in self.requests
            if r.is_object_get and (bucket is None or r.bucket == bucket)
        ]

    def listings(self, bucket: str | None = None) -> int:
        """How many ListObjectsV2 pages were requested."""
        return sum(r.is_listing and (bucket is None or r.bucket == bucket) for r in self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 (and everything else) on 127.0.0.1, on a free port, for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_proxy(moto_endpoint: str) -> Iterator[CountingProxy]:
    proxy = CountingProxy(moto_endpoint)
    try:
        yield proxy
    finally:
        proxy.close()


def reset_server(endpoint: str) -> None:
    """Forget every bucket and object (moto's reset API)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@dataclass
class S3:
    """Per-test handle: an admin client (direct to moto) and the environment the code sees."""

    endpoint: str  # what the code under test talks to (the proxy)
    server: str  # moto itself
    proxy: CountingProxy
    client: Any  # boto3 client with credentials, straight to moto (setup only)
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def cache_dir(self) -> Path:
        """gan's default cache under the test's XDG_CACHE_HOME."""
        return self.tmp / "xdg-cache" / "gan" / "s3"

    def bucket(self, name: str, public: bool = False) -> str:
        kwargs = {"ACL": "public-read"} if public else {}
        self.client.create_bucket(Bucket=name, **kwargs)
        return name

    def put(self, bucket: str, key: str, body: bytes, acl: str | None = None) -> str:
        """Upload one object; returns its ETag (without quotes)."""
        kwargs = {"ACL": acl} if acl else {}
        etag = self.client.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)["ETag"]
        return etag.strip('"')

    def put_many(
        self, bucket: str, prefix: str, files: Mapping[str, bytes], acl: str | None = None
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        base = prefix.rstrip("/") + "/" if prefix else ""
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(lambda item: self.put(bucket, base + item[0], item[1], acl), files.items())
            )

    def anonymous(self) -> None:
        """No credentials anywhere: no keys in the environment, no profile, no instance role."""
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            self.monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _admin_client(moto_endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION, **CREDENTIALS)


@pytest.fixture
def s3(
    moto_endpoint: str,
    s3_proxy: CountingProxy,
    _admin_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> S3:
    """An empty S3 server that boto3 (here and in subprocesses) reaches via the environment."""
    reset_server(moto_endpoint)
    s3_proxy.reset()
    nowhere = tmp_path / "no-aws-config"  # never created: no real profile can be read
    for name in (
        "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_proxy.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no 1 s wait on 169.254.169.254
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    (tmp_path / "home").mkdir()
    return S3(s3_proxy.url, moto_endpoint, s3_proxy, _admin_client, tmp_path, monkeypatch)


# ---- a small BPS-like dataset -----------------------------------------------------------------

BPS_DOSES = {"Fe": (0.0, 0.3, 0.82), "X-ray": (0.0, 0.1, 1.0)}
BPS_HOURS = (4, 24, 48)


def nucleus_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A uint16 fluorescence crop: one nucleus (a bright ellipse with a smooth edge and a
    little texture) with a few small bright foci, on a dark noisy background."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    cy = height / 2 + rng.uniform(-0.08, 0.08) * height
    cx = width / 2 + rng.uniform(-0.08, 0.08) * width
    ry, rx = rng.uniform(0.25, 0.38) * height, rng.uniform(0.25, 0.38) * width
    angle = rng.uniform(0, np.pi)
    dy, dx = yy - cy, xx - cx
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
    r = np.hypot(u, v)
    body = 1.0 / (1.0 + np.exp((r - 1.0) * 9.0))  # smooth falloff at the rim
    texture = 1.0 + 0.08 * rng.standard_normal((height, width))
    image = rng.uniform(250, 450) + rng.normal(0, 35, (height, width))  # background + noise
    image += rng.uniform(9000, 17000) * body * (1.0 - 0.25 * r**2).clip(0.3) * texture
    for _ in range(int(rng.integers(2, 6))):  # foci: small bright spots inside the nucleus
        t, rad = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.7)
        fy = cy + rad * ry * np.sin(t)
        fx = cx + rad * rx * np.cos(t)
        sigma = rng.uniform(0.8, 1.6)
        image += rng.uniform(6000, 12000) * np.exp(-((yy - fy) ** 2 + (xx - fx) ** 2) / sigma**2)
    return np.clip(image, 200, 30000).astype(np.uint16)


def tiff_bytes(image: np.ndarray) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image)
    return buffer.getvalue()


def bps_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n meta.csv rows that cycle through every (particle, hours, dose) combination (18),
    listed in an order that is not the sorted order of their file names."""
    rows = []
    for i in range(n):
        particle = ("Fe", "X-ray")[i % 2]
        hours = BPS_HOURS[(i // 2) % 3]
        dose = BPS_DOSES[particle][(i // 6) % 3]
        well = "ABCDEFGH"[(i * 5 + seed) % 8]
        name = f"P{242 + (i * 7) % 5}_{(seed * 1000 + i * 7919) % 100000:05d}-{well}{i % 9 + 1}"
        rows.append({
            "filename": f"{name}_{i:03d}_proj.tif",
            "dose_Gy": dose,
            "particle_type": particle,
            "hr_post_exposure": hours,
        })  # fmt: skip
    return rows


def bps_files(n: int = 24, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """(rows, {relative name: bytes}) for meta.csv and n TIFFs of 40-90 px a side."""
    rng = np.random.default_rng(seed)
    rows = bps_rows(n, seed)
    files: dict[str, bytes] = {}
    for row in rows:
        height, width = (int(s) for s in rng.integers(40, 91, size=2))
        files[row["filename"]] = tiff_bytes(nucleus_image(rng, height, width))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files["meta.csv"] = text.getvalue().encode()
    return rows, files


def make_bps_dataset(
    dest: Path | str,
    n: int = 24,
    *,
    seed: int = 0,
    s3: S3 | None = None,
    acl: str | None = None,
) -> list[dict[str, Any]]:
    """Write a BPS-layout dataset to a folder, or upload it to an s3://bucket/prefix (the
    bucket must exist; pass the `s3` fixture). Returns the meta.csv rows."""
    rows, files = bps_files(n, seed)
    if str(dest).startswith("s3://"):
        if s3 is None:
            raise ValueError("uploading needs the s3 fixture")
        bucket, _, prefix = str(dest)[len("s3://") :].partition("/")
        s3.put_many(bucket, prefix, files, acl)
    else:
        folder = Path(dest)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
    return rows


def write_files(folder: Path, files: Mapping[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def sidecar(path: Path) -> dict[str, Any]:
    """The cache's record of one cached file: its entry in the bucket's manifest."""
    for folder in path.parents:
        manifest = folder / ".gan-manifest.json"
        if manifest.is_file():
            key = path.relative_to(folder).as_posix()
            etag, size = json.loads(manifest.read_text())[key]
            return {"etag": etag, "size": size}
    raise FileNotFoundError(f"no manifest above {path}")
