"""A local stand-in for Sentry's ingestion endpoint: the envelopes an SDK pointed at it sends, decoded."""
from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

from tests.support.threads import http_server_on_a_thread


def decode_envelope(body: bytes) -> list[dict]:
    """The JSON items of an envelope (header line, then item header and payload lines)."""
    items = []
    for line in body.splitlines()[1:]:
        try:
            items.append(json.loads(line))
        except ValueError:
            continue
    return items


@contextmanager
def sentry_receiver() -> Iterator[tuple[str, list[bytes]]]:
    """``(dsn, bodies)``: each request body, decompressed, as it arrived."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding == "br":
                import brotli

                body = brotli.decompress(body)
            bodies.append(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args):
            pass

    with http_server_on_a_thread(Handler) as port:
        yield f"http://public@127.0.0.1:{port}/1", bodies
