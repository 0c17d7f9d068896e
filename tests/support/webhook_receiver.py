"""A real HTTP receiver of webhooks on localhost, and the settings a `webhooks` worker needs to call it.

The worker's allow-list admits 127.0.0.1 (and nothing else) so it may call the receiver; its
retry schedule is shortened to fractions of a second.
"""
from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator

WORKER_ENV = {
    "SAMO_WEBHOOK_ALLOWED_DESTINATIONS": "127.0.0.1",
    "SAMO_WEBHOOK_RETRY_SCHEDULE_S": "0,0.3,0.3,0.3",
    "SAMO_WEBHOOK_RETRY_JITTER": "0",
    "SAMO_WEBHOOK_TIMEOUT_S": "3",
    "SAMO_WEBHOOK_DISABLE_AFTER_FAILURES": "3",
    "SAMO_WEBHOOK_DISABLE_AFTER_S": "0",
}


class Receiver:
    """Records every request; answers from a per-path script of (status, headers), then 204."""

    def __init__(self):
        self.requests: list[dict] = []
        self.scripts: dict[str, list[tuple[int, dict]]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "at": time.monotonic()})
                    script = receiver.scripts.get(self.path) or []
                    status, headers = script.pop(0) if script else (204, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def script(self, path: str, *answers) -> str:
        self.scripts[path] = [answer if isinstance(answer, tuple) else (answer, {}) for answer in answers]
        return self.url(path)

    def received(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
