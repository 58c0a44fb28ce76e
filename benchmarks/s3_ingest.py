"""S3 ingest benchmark: naive sequential GETs vs the `folder` loader, cold and warm cache.

Everything runs on 127.0.0.1: a moto S3 server in its own process, and a TCP proxy (asyncio,
in its own process) that delays every server-to-client chunk by --latency-ms, modelling the
first-byte latency of in-region S3. For latency 0 the clients talk to the server directly.

    uv run python benchmarks/s3_ingest.py [--num-images 2000] [--latency-ms 20]
        [--workers 32] [--json out.json]

Measured at latency 0 and at --latency-ms, in one run:
  naive        list, then a sequential loop of get_object(...)["Body"].read() + PIL decode
  loader cold  gan.data.load_dataset(folder, s3://...) into a fresh, empty cache dir
  loader warm  the same call again, same cache dir: must make 0 GETs
GET counts come from moto's own request log (its recorder), not from the loader. The last
line printed is `s3_ingest_speedup=<x>`: loader-cold images/s over naive images/s at
--latency-ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BUCKET = "gan-bench"
PREFIX = "images"
IMAGE_SIZE = 32


# --------------------------------------------------------------------------- latency proxy


class _Stats:
    """Connection counts of the proxy (it is single-threaded: no locks)."""

    def __init__(self) -> None:
        self.active = self.peak = self.total = 0
        self.bytes_down = 0

    def opened(self) -> None:
        self.active += 1
        self.total += 1
        self.peak = max(self.peak, self.active)

    def closed(self) -> None:
        self.active -= 1

    def reset(self) -> None:
        self.peak, self.total, self.bytes_down = self.active, 0, 0

    def as_dict(self) -> dict[str, int]:
        return {"active": self.active, "peak_connections": self.peak,
                "connections": self.total, "bytes_down": self.bytes_down}  # fmt: skip


class _Upstream(asyncio.Protocol):
    """Proxy <-> server. Server bytes reach the client `delay` seconds after they arrive.

    Each chunk is held for `delay` from its own arrival (a FIFO of due times, one timer per
    connection), so back-to-back chunks are not delayed cumulatively and order is kept.
    """

    def __init__(self, client: _Downstream) -> None:
        self.client = client
        self.loop = client.loop
        self.delay = client.delay
        self.transport: asyncio.Transport | None = None
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.ended = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.client.stats.bytes_down += len(data)
        self._push(data)

    def eof_received(self) -> bool:
        self._end()
        return False  # close our side; the client side closes once the queue drains

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def pause_writing(self) -> None:
        self.client.pause_reading()

    def resume_writing(self) -> None:
        self.client.resume_reading()

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self._push(None)

    def _push(self, data: bytes | None) -> None:
        if self.delay <= 0 and not self.queue:
            self._deliver(data)
            return
        self.queue.append((self.loop.time() + self.delay, data))
        if self.timer is None:
            self.timer = self.loop.call_at(self.queue[0][0], self._flush)

    def _flush(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now:
            self._deliver(self.queue.popleft()[1])
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self._flush)

    def _deliver(self, data: bytes | None) -> None:
        transport = self.client.transport
        if transport is None or transport.is_closing():
            self.queue.clear()
            return
        if data is None:
            transport.close()  # sends what is buffered first
        else:
            transport.write(data)


class _Downstream(asyncio.Protocol):
    """Client <-> proxy: one upstream connection per client connection (keep-alive safe)."""

    def __init__(self, upstream_addr: tuple[str, int], delay: float, stats: _Stats) -> None:
        self.loop = asyncio.get_running_loop()
        self.upstream_addr, self.delay, self.stats = upstream_addr, delay, stats
        self.transport: asyncio.Transport | None = None
        self.upstream: _Upstream | None = None
        self.early = bytearray()  # client bytes that arrive before upstream is connected
        self.early_eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stats.opened()
        transport.pause_reading()  # type: ignore[attr-defined]
        self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            _, upstream = await self.loop.create_connection(
                lambda: _Upstream(self), *self.upstream_addr
            )
        except OSError:
            if self.transport is not None:
                self.transport.abort()
            return
        if self.lost:
            upstream.transport.close()
            return
        self.upstream = upstream
        if self.early:
            upstream.transport.write(bytes(self.early))
            self.early.clear()
        if self.early_eof and upstream.transport.can_write_eof():
            upstream.transport.write_eof()
        self.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.upstream is None:
            self.early += data
        else:
            self.upstream.transport.write(data)  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        up = self.upstream
        if up is None:
            self.early_eof = True
        elif up.transport is not None and up.transport.can_write_eof():
            up.transport.write_eof()
        return True  # half-close: keep sending the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.stats.closed()
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.queue.clear()
            self.upstream.transport.close()

    def pause_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


def _proxy_process(upstream_port: int, latency_ms: float, control: Any) -> None:
    """Entry point of the proxy process; commands arrive over `control` (a Pipe end)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark stops us, also on Ctrl-C

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stats = _Stats()
        done = loop.create_future()
        server = await loop.create_server(
            lambda: _Downstream(("127.0.0.1", upstream_port), latency_ms / 1000.0, stats),
            "127.0.0.1",
            0,
            backlog=1024,
        )
        control.send(server.sockets[0].getsockname()[1])

        def on_command() -> None:
            try:
                command = control.recv()
            except (EOFError, OSError):  # the benchmark went away
                command = "stop"
            if command == "stats":
                control.send(stats.as_dict())
            elif command == "reset":
                stats.reset()
                control.send(True)
            elif not done.done():
                done.set_result(None)

        loop.add_reader(control.fileno(), on_command)
        await done
        server.close()

    asyncio.run(serve())


class LatencyProxy:
    """The asyncio proxy above, running in its own process (spawned: no torch, no threads)."""

    def __init__(self, upstream_port: int, latency_ms: float) -> None:
        ctx = mp.get_context("spawn")
        self._control, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_proxy_process, args=(upstream_port, latency_ms, child), daemon=True
        )
        self._process.start()
        child.close()
        if not self._control.poll(60):
            self.stop()
            raise RuntimeError("the latency proxy did not start")
        self.port: int = self._control.recv()
        self.pid = self._process.pid
        self.url = f"http://127.0.0.1:{self.port}"

    def _ask(self, command: str) -> Any:
        self._control.send(command)
        return self._control.recv()

    def reset(self) -> None:
        self._ask("reset")

    def stats(self) -> dict[str, int]:
        return self._ask("stats")

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._control.send("stop")
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        self._control.close()


# --------------------------------------------------------------------------- moto server


def process_cpu_seconds(pid: int | None = None) -> float:
    """User+system CPU seconds of a process (all its threads); this one when pid is None."""
    if pid is None:
        return time.process_time()
    try:  # Linux: fields 14 and 15 of /proc/PID/stat, in clock ticks
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """`python -m moto.server` in its own process, with its request recorder on a file."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.recording = workdir / "moto_recording.jsonl"
        self.log = workdir / "moto_server.log"
        env = dict(os.environ, MOTO_RECORDER_FILEPATH=str(self.recording))
        env.pop("MOTO_ENABLE_RECORDING", None)
        with open(self.log, "wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
            )
        self.pid = self._process.pid
        try:
            self._wait_ready(60)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                code = self._process.returncode
                raise RuntimeError(f"moto.server exited early ({code}):\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=2) as r:
                    r.read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"moto.server did not answer on {self.url} within {timeout:.0f} s")

    def _api(self, action: str) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/recorder/{action}", method="POST")
        with urllib.request.urlopen(request, timeout=30) as r:
            r.read()

    def start_recording(self) -> None:
        self._api("reset-recording")
        self._api("start-recording")

    def stop_recording(self) -> dict[str, int]:
        """Requests logged since start_recording, by kind."""
        self._api("stop-recording")
        counts = {"get_object": 0, "list": 0, "other": 0}
        text = self.recording.read_text() if self.recording.exists() else ""
        for line in text.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            parts = urlsplit(entry["url"])
            path = parts.path.lstrip("/")
            if path.startswith("moto-api"):
                continue
            bucket, _, key = path.partition("/")
            if entry["method"] == "GET" and key and "list-type" not in parts.query:
                counts["get_object"] += 1
            elif entry["method"] == "GET" and not key:
                counts["list"] += 1
            else:
                counts["other"] += 1
        self._api("reset-recording")
        return counts

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()  # moto.server exits on SIGTERM
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)


class MiniServer:
    """benchmarks/mini_s3.py in its own process, serving files written under workdir/s3."""

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "s3"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self._process: subprocess.Popen | None = None
        self.pid: int | None = None

    def start(self) -> None:
        script = Path(__file__).with_name("mini_s3.py")
        self._process = subprocess.Popen(
            [sys.executable, str(script), "--root", str(self.root), "--port", str(self.port)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self.pid = self._process.pid
        line = self._process.stdout.readline()
        if not line.startswith(b"ready"):
            raise RuntimeError("mini_s3.py did not start")

    def _call(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(f"{self.url}{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.read()

    def start_recording(self) -> None:
        self._call("POST", "/_reset")

    def stop_recording(self) -> dict[str, int]:
        return json.loads(self._call("GET", "/_counts"))

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)


# --------------------------------------------------------------------------- data


def make_png(rng: Any, size: int = IMAGE_SIZE) -> bytes:
    """A grayscale noise image with a few Gaussian blobs, as PNG bytes."""
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = rng.normal(40.0, 20.0, (size, size)).astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0, size, 2)
        sigma = rng.uniform(2.0, 6.0)
        img += 180.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    buf = io.BytesIO()
    Image.fromarray(img.clip(0, 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def write_objects(num_images: int, root: Path) -> int:
    """The same images as `upload`, as the files mini_s3.py serves. Returns total bytes."""
    import numpy as np

    folder = root / BUCKET / PREFIX
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    bodies = [make_png(rng) for _ in range(num_images)]
    for i, body in enumerate(bodies):
        (folder / f"img_{i:06d}.png").write_bytes(body)
    return sum(map(len, bodies))


def upload(num_images: int, endpoint: str) -> int:
    """Create the bucket and PUT the images (directly, 8 at a time). Returns total bytes."""
    import boto3
    import numpy as np
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=endpoint, config=Config(max_pool_connections=8))
    client.create_bucket(Bucket=BUCKET)
    rng = np.random.default_rng(0)
    bodies = [make_png(rng) for _ in range(num_images)]

    def put(i: int) -> None:
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/img_{i:06d}.png", Body=bodies[i])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(num_images)))
    return sum(map(len, bodies))


# --------------------------------------------------------------------------- measurements


@dataclass
class Result:
    latency_ms: float
    method: str
    images: int
    seconds: float
    images_per_s: float
    get_requests: int
    list_requests: int
    fetch_seconds: float | None = None  # the loader: list + download (or cache check)
    peak_connections: int | None = None  # at the proxy
    connections: int | None = None  # TCP connections opened through the proxy
    cpu_client: float = 0.0  # CPU seconds of this process (all threads) during the run
    cpu_server: float = 0.0  # ... of the moto server process
    cpu_proxy: float | None = None  # ... of the proxy process
    loader_s3_downloaded: int | None = None
    loader_s3_cached: int | None = None


def naive(endpoint: str, limit: int | None = None) -> tuple[Any, int]:
    """Seed 002's way: list, then one GET + PIL decode after the other."""
    import boto3
    import numpy as np
    from PIL import Image

    client = boto3.client("s3", endpoint_url=endpoint)
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
        for item in page.get("Contents", [])
        if item["Key"].lower().endswith(".png")
    ]
    keys = keys[:limit]
    arrays = []
    for key in keys:
        data = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        arrays.append(np.asarray(Image.open(io.BytesIO(data)).convert("L")))
    return np.stack(arrays), len(keys)


class _FetchTimer:
    """Times gan.data.s3.fetch inside load_dataset (wraps the name sources.py calls)."""

    def __init__(self) -> None:
        import gan.data.sources as sources

        self.sources, self.original, self.seconds = sources, sources.fetch, 0.0

    def __enter__(self) -> _FetchTimer:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        self.sources.fetch = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self.sources.fetch = self.original


def loader(endpoint: str, cache_dir: Path, workers: int) -> tuple[Any, float]:
    from gan.config import DataConfig
    from gan.data import load_dataset

    os.environ["AWS_ENDPOINT_URL"] = endpoint
    config = DataConfig(
        name="folder",
        source=f"s3://{BUCKET}/{PREFIX}",
        image_size=(IMAGE_SIZE, IMAGE_SIZE),
        cache_dir=str(cache_dir),
        s3_workers=workers,
    )
    with _FetchTimer() as timer:
        data = load_dataset(config)
    return data, timer.seconds


def measure(
    server: MotoServer,
    proxy: LatencyProxy | None,
    latency_ms: float,
    method: str,
    run: Any,
) -> tuple[Result, Any]:
    if proxy is not None:
        proxy.reset()
    server.start_recording()
    pids = [None, server.pid] + ([proxy.pid] if proxy is not None else [])
    cpu0 = [process_cpu_seconds(pid) for pid in pids]
    t0 = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - t0
    cpu = [process_cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
    counts = server.stop_recording()
    images = out[1] if method == "naive" else int(out[0].images.shape[0])
    result = Result(
        latency_ms=latency_ms,
        method=method,
        images=images,
        seconds=seconds,
        images_per_s=images / seconds,
        get_requests=counts["get_object"],
        list_requests=counts["list"],
        cpu_client=cpu[0],
        cpu_server=cpu[1],
    )
    if proxy is not None:
        stats = proxy.stats()
        result.peak_connections = stats["peak_connections"]
        result.connections = stats["connections"]
        result.cpu_proxy = cpu[2]
    if method != "naive":
        data, result.fetch_seconds = out
        summary = data.summary()
        result.loader_s3_downloaded = summary.get("s3_downloaded")
        result.loader_s3_cached = summary.get("s3_cached")
    return result, out


def run_latency(
    server: MotoServer,
    proxy: LatencyProxy | None,
    latency_ms: float,
    workers: int,
    workdir: Path,
    num_images: int,
) -> list[Result]:
    import numpy as np

    endpoint = proxy.url if proxy is not None else server.url
    cache_dir = workdir / f"cache-{latency_ms:g}ms"
    shutil.rmtree(cache_dir, ignore_errors=True)
    cache_dir.mkdir()
    results = []
    res, (reference, _) = measure(server, proxy, latency_ms, "naive", lambda: naive(endpoint))
    results.append(res)
    for method in ("loader cold", "loader warm"):
        res, (data, _) = measure(
            server, proxy, latency_ms, method, lambda: loader(endpoint, cache_dir, workers)
        )
        got = data.images[:, 0].numpy()
        if got.shape != reference.shape or not np.array_equal(got, reference):
            raise RuntimeError(f"{method} at {latency_ms:g} ms decoded different pixels")
        results.append(res)
    for res in results:
        if res.images != num_images:
            raise RuntimeError(f"{res.method} at {latency_ms:g} ms saw {res.images} images")
    return results


def print_table(results: list[Result]) -> None:
    header = (
        f"{'latency':>7} {'method':<11} {'images':>6} {'seconds':>7} {'images/s':>8} "
        f"{'GETs':>5} {'LISTs':>5} {'dl/cached':>9} {'fetch s':>7} {'conns':>6} {'peak':>4} "
        f"{'cpu s: client':>13} {'server':>6} {'proxy':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        fetch = f"{r.fetch_seconds:7.2f}" if r.fetch_seconds is not None else f"{'-':>7}"
        summary = "-"
        if r.loader_s3_downloaded is not None:
            summary = f"{r.loader_s3_downloaded}/{r.loader_s3_cached}"
        if r.connections is None:
            conns = f"{'direct':>6} {'-':>4}"
        else:
            conns = f"{r.connections:>6} {r.peak_connections:>4}"
        proxy = f"{r.cpu_proxy:>5.2f}" if r.cpu_proxy is not None else f"{'-':>5}"
        print(
            f"{r.latency_ms:>5g}ms {r.method:<11} {r.images:>6} {r.seconds:>7.2f} "
            f"{r.images_per_s:>8.1f} {r.get_requests:>5} {r.list_requests:>5} {summary:>9} "
            f"{fetch} {conns} {r.cpu_client:>13.2f} {r.cpu_server:>6.2f} {proxy}"
        )
    print(
        "GETs/LISTs: GetObject/ListObjectsV2 requests in moto's request log during the run; "
        "dl/cached: the loader's\nown summary (s3_downloaded/s3_cached); fetch s: "
        "gan.data.s3.fetch (list + download or cache check),\nthe rest is header survey + "
        "decode + stack; conns/peak: TCP connections through the proxy (moto.server\n"
        "closes every connection after one response, so one per request) and the most open "
        "at once;\ncpu s: CPU seconds of this process (all threads), the moto server and "
        "the proxy during the run."
    )


def _set_aws_environment() -> None:
    """Fixed fake credentials; nothing from the user's AWS config may leak in."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )


def main(argv: list[str] | None = None) -> int:
    from gan.data.s3 import DEFAULT_WORKERS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-images", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="DataConfig(s3_workers=...)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--server",
        choices=("mini", "moto"),
        default="mini",
        help="mini: benchmarks/mini_s3.py (default; little CPU per request); moto: moto.server "
        "(all of S3, about 2.7 ms CPU per GET on 2 cores: it limits what is measured)",
    )
    args = parser.parse_args(argv)
    if args.num_images < 1 or args.latency_ms <= 0 or args.workers < 1:
        parser.error("--num-images and --workers must be >= 1, --latency-ms > 0")

    _set_aws_environment()
    from loguru import logger

    import gan.data  # noqa: F401  (torch and the loaders, imported before any timing)

    logger.disable("gan")  # keep the table readable; failures still raise

    def stop_on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)

    workdir = Path(tempfile.mkdtemp(prefix="gan-s3-bench-"))
    server: MotoServer | MiniServer | None = None
    proxy: LatencyProxy | None = None
    try:
        t0 = time.perf_counter()
        if args.server == "mini":
            server = MiniServer(workdir)
            total_bytes = write_objects(args.num_images, server.root)
            server.start()
        else:
            server = MotoServer(workdir)
            total_bytes = upload(args.num_images, server.url)
        proxy = LatencyProxy(server.port, args.latency_ms)
        print(
            f"s3 ingest benchmark: {args.num_images} PNGs ({IMAGE_SIZE}x{IMAGE_SIZE} L, "
            f"{total_bytes / 1e6:.2f} MB) in s3://{BUCKET}/{PREFIX}/, uploaded in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        print(
            f"{'mini_s3.py' if args.server == 'mini' else 'moto ' + _version('moto')} server at "
            f"{server.url} (own process); latency proxy at "
            f"{proxy.url} (own process, +{args.latency_ms:g} ms per server->client chunk)"
        )
        print(
            f"workers={args.workers} (DataConfig.s3_workers; loader default {DEFAULT_WORKERS}); "
            f"cpus={os.cpu_count()}; python {platform.python_version()}; "
            f"boto3 {_version('boto3')}; pillow {_version('pillow')}"
        )
        print(f"load average before: {_loadavg()}")
        naive(server.url, limit=50)  # warm-up (not timed): imports, botocore models, server
        results = run_latency(server, None, 0.0, args.workers, workdir, args.num_images)
        results += run_latency(
            server, proxy, args.latency_ms, args.workers, workdir, args.num_images
        )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if proxy is not None:
            proxy.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"load average after: {_loadavg()}")
    print()
    print_table(results)
    by = {(r.latency_ms, r.method): r for r in results}
    speedups = {
        lat: by[(lat, "loader cold")].images_per_s / by[(lat, "naive")].images_per_s
        for lat in (0.0, args.latency_ms)
    }
    print()
    for lat, x in speedups.items():
        print(f"loader cold vs naive at {lat:g} ms: {x:.2f}x")
    warm_gets = [by[(lat, "loader warm")].get_requests for lat in (0.0, args.latency_ms)]
    print(f"warm-cache GETs (the server's request log): {warm_gets}  workers={args.workers}")
    speedup = speedups[args.latency_ms]
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "num_images": args.num_images,
            "latency_ms": args.latency_ms,
            "workers": args.workers,
            "cpus": os.cpu_count(),
            "results": [asdict(r) for r in results],
            "speedup_at_latency": {f"{k:g}": v for k, v in speedups.items()},
            "s3_ingest_speedup": speedup,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if args.latency_ms == 20:
        verdict = "met" if speedup >= 8 else "NOT met"
        print(f"issue target (>= 8x at 20 ms, 0 warm GETs): speedup {verdict}")
    status = 0 if all(g == 0 for g in warm_gets) else 1
    if status:
        print("warm cache made GET requests", file=sys.stderr)
    print(f"s3_ingest_speedup={speedup:.2f}")
    return status


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
