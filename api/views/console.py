"""``/console``: the web console, a static single-page app built from ``console/`` into
``api/console/static/`` (``make console``), served with a strict Content-Security-Policy.

The page holds no credential of its own: it trades the API key typed into it for short-lived
tokens (``POST /v1/auth/token``) kept in memory, and calls the API like any client.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory

bp = Blueprint("console", __name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "console" / "static"
#: Every script, style, image and connection from this origin only; nothing inline, no frames.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: The build manifest and the licences are for people and tests, not for the page.
NOT_SERVED = frozenset({"build-manifest.json"})


def with_security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


@bp.get("/console")
@bp.get("/console/")
def console_page():
    response = send_from_directory(STATIC_DIR, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return with_security_headers(response)


@bp.get("/console/<path:name>")
def console_asset(name: str):
    if name in NOT_SERVED:
        abort(404)
    response = send_from_directory(STATIC_DIR, name, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return with_security_headers(response)
