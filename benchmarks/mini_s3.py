"""A minimal S3 server for benchmarks/s3_ingest.py only (the tests keep moto).

moto implements all of S3 and costs about 2.7 ms of CPU per GetObject on a 2-core
machine, more than the client being measured; on real S3 the server's CPU is not ours to
pay. This one speaks just enough of the REST API for the benchmark, path-style:
ListObjectsV2 (pagination by continuation token, 1,000 keys a page), GetObject (ETag,
Content-Length, Last-Modified, If-Match -> 412) and HeadObject, over HTTP/1.1 keep-alive.
The objects are files under --root (root/bucket/key), read into memory at start, with
their MD5 as ETag, like S3's for single-part uploads.

    python benchmarks/mini_s3.py --root DIR --port N

GET /_counts answers {"get_object": n, "list": n, "other": n} (the request log the
benchmark checks); POST /_reset zeroes it. Anything else answers 501.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

PAGE = 1000


class Store:
    def __init__(self, root: Path) -> None:
        self.objects: dict[str, dict[str, tuple[bytes, str]]] = {}
        for bucket in sorted(p for p in root.iterdir() if p.is_dir()):
            found = {}
            for path in sorted(p for p in bucket.rglob("*") if p.is_file()):
                body = path.read_bytes()
                found[path.relative_to(bucket).as_posix()] = (body, hashlib.md5(body).hexdigest())
            self.objects[bucket.name] = found
        self.keys = {b: sorted(objs) for b, objs in self.objects.items()}
        self.modified = formatdate(usegmt=True)
        self.counts = {"get_object": 0, "list": 0, "other": 0}
        self.lock = threading.Lock()

    def count(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as S3 does
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms ACK stall)
    store: Store

    def log_message(self, format: str, *args: object) -> None:  # no line per request
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              head: bool = False) -> None:  # fmt: skip
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self._headers_buffer.append(b"\r\n")  # end_headers, with the body in the same write
        self.wfile.write(b"".join(self._headers_buffer) + (b"" if head else body))
        self._headers_buffer = []

    def _error(self, status: int, code: str) -> None:
        body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>"
        self._send(status, body.encode(), {"Content-Type": "application/xml"})

    def do_POST(self) -> None:
        if self.path == "/_reset":
            with self.store.lock:
                self.store.counts = dict.fromkeys(self.store.counts, 0)
            return self._send(200)
        self.store.count("other")
        self._error(501, "NotImplemented")

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        url = urlsplit(self.path)
        if url.path == "/_counts":
            return self._send(200, json.dumps(self.store.counts).encode())
        bucket, _, key = unquote(url.path.lstrip("/")).partition("/")
        objects = self.store.objects.get(bucket)
        if objects is None:
            self.store.count("other")
            return self._error(404, "NoSuchBucket")
        query = parse_qs(url.query)
        if not key:
            if query.get("list-type") != ["2"]:
                self.store.count("other")
                return self._error(501, "NotImplemented")
            self.store.count("list")
            return self._list(bucket, query)
        self.store.count("get_object" if not head else "other")
        found = objects.get(key)
        if found is None:
            return self._error(404, "NoSuchKey")
        body, etag = found
        match = self.headers.get("If-Match")
        if match is not None and match.strip('"') != etag:
            return self._error(412, "PreconditionFailed")
        headers = {"ETag": f'"{etag}"', "Last-Modified": self.store.modified,
                   "Content-Type": "application/octet-stream"}  # fmt: skip
        self._send(200, body, headers, head)

    def _list(self, bucket: str, query: dict[str, list[str]]) -> None:
        prefix = query.get("prefix", [""])[0]
        after = query.get("continuation-token", query.get("start-after", [""]))[0]
        limit = min(int(query.get("max-keys", [str(PAGE)])[0]), PAGE)
        keys = [k for k in self.store.keys[bucket] if k.startswith(prefix) and k > after]
        page, truncated = keys[:limit], len(keys) > limit
        objects = self.store.objects[bucket]
        parts = [
            "<?xml version='1.0' encoding='UTF-8'?>",
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>",
            f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{limit}</MaxKeys>",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
        ]
        if truncated:
            parts.append(f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>")
        for k in page:
            body, etag = objects[k]
            parts.append(
                f"<Contents><Key>{escape(k)}</Key><LastModified>2026-01-01T00:00:00.000Z"
                f"</LastModified><ETag>&quot;{etag}&quot;</ETag><Size>{len(body)}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        parts.append("</ListBucketResult>")
        self._send(200, "".join(parts).encode(), {"Content-Type": "application/xml"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Handler.store = Store(args.root)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"ready {quote(str(args.root))}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
