"""gunicorn's own error answers as problem+json.

gunicorn answers a request it cannot parse itself, before the app sees it: a request line over
``limit_request_line`` (414), too many or too large header fields (431), a malformed request line
or header (400). Its page is HTML, so a client that reads every error as problem+json failed on
exactly these. Each gunicorn worker replaces gunicorn's error writer with :func:`problem_writer`
once it has loaded the app (``post_worker_init`` in ``scripts/gunicorn.conf.py``): every worker
class calls ``gunicorn.util.write_error`` and keeps choosing the status and reason itself.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from gunicorn import util

from api.problems import HTTP_SLUGS, PROBLEM_CONTENT_TYPE

#: gunicorn's detail can quote the request line; a problem document quotes no more than this.
MAX_DETAIL_CHARS = 200


def problem_document(base_uri: str, status: int, reason: str, detail: str) -> bytes:
    body = {"type": base_uri + HTTP_SLUGS.get(status, "http-error"), "title": reason, "status": status}
    if detail:
        body["detail"] = detail[:MAX_DETAIL_CHARS]
    return json.dumps(body).encode("ascii")


def problem_writer(base_uri: str) -> Callable:
    """A drop-in for ``gunicorn.util.write_error(sock, status_int, reason, mesg)``."""

    def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
        body = problem_document(base_uri, status_int, reason, mesg)
        head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: {PROBLEM_CONTENT_TYPE}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        util.write_nonblock(sock, head.encode("latin-1") + body)

    return write_error


def install(app) -> None:
    """Answer gunicorn's own errors with problem documents of ``app``'s problem type prefix."""
    util.write_error = problem_writer(app.config["SAMO_SETTINGS"].problem_base_uri)
