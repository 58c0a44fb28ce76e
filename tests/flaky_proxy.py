"""A flaky HTTP proxy on 127.0.0.1 for the S3 retry tests: it sits in front of the test S3
endpoint (tests/s3_server.py) and fails chosen requests the ways a real endpoint does,
counting each failure it served.

    proxy = FlakyProxy(upstream_url)
    proxy.fail(1, "slowdown", only=listing)   # the next listing: HTTP 503 SlowDown
    proxy.fail(3, "drop", only=object_get)    # and the next 3 downloads: no answer at all
    proxy.failed                              # how many failures were served

Ways to fail: "slowdown" (HTTP 503 SlowDown: botocore backs off 0-1 s, 0-2 s, ...),
"unavailable" (HTTP 503 ServiceUnavailable: 0-50 ms, 0-100 ms, ...), "drop" (the request
is read, the connection closed without an answer), "headers" (the answer stops in its status
line: a cut later in the headers reads as a whole answer with an empty body, which HTTP/1.1
allows) and "body" (the headers and half the body, then the connection drops).

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.s3_server import _HOP_BY_HOP

WAYS = ("slowdown", "unavailable", "drop", "headers", "body")
_CODES = {"slowdown": "SlowDown", "unavailable": "ServiceUnavailable"}


def object_get(method: str, path: str) -> bool:
    """An object download: a GET of a key (path-style: /bucket/key, no query)."""
    parts = urlsplit(path)
    return method == "GET" and "/" in parts.path.lstrip("/") and not parts.query


def listing(method: str, path: str) -> bool:
    """A ListObjectsV2 page."""
    return method == "GET" and "list-type=2" in urlsplit(path).query


def _error(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        "<Message>Please try again.</Message></Error>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        proxy: FlakyProxy = self.server.proxy  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        way = proxy.take(self.command, self.path)
        if way == "drop":
            self.close_connection = True
            return
        if way in _CODES:
            self._answer(503, [("Content-Type", "application/xml")], _error(_CODES[way]))
            return
        status, headers, data = self._upstream(proxy, body)
        if way == "headers":  # the answer stops inside its status line
            self.wfile.write(f"HTTP/1.1 {status}".encode()[:-1])
            self.close_connection = True
            return
        self._answer(status, headers, data, cut=way == "body")

    def _upstream(self, proxy: FlakyProxy, body: bytes | None):
        upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders(body)
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()

    def _answer(self, status: int, headers, data: bytes, cut: bool = False) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data[: len(data) // 2] if cut else data)
        self.wfile.flush()
        self.close_connection = cut

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class FlakyProxy:
    """An HTTP proxy that fails the next N requests (of a kind) in one of WAYS."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._rules: list[list[Any]] = []  # [requests left to fail, way, which requests]
        self.failed = 0  # failures served
        self.requests = 0  # requests seen, failed or not
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def fail(
        self, count: int, way: str, only: Callable[[str, str], bool] = lambda m, p: True
    ) -> None:
        """Fail the next `count` requests that `only(method, path)` accepts, in `way` (rules
        add up: a request meets the first one it matches that has failures left)."""
        assert way in WAYS, way
        with self._lock:
            self._rules.append([count, way, only])

    def take(self, method: str, path: str) -> str | None:
        """How this request fails (None: it is forwarded as it is); counts it."""
        with self._lock:
            self.requests += 1
            for rule in self._rules:
                if rule[0] > 0 and rule[2](method, path):
                    rule[0] -= 1
                    self.failed += 1
                    return rule[1]
        return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
