"""Requests gunicorn refuses itself, before the app sees them, still answer problem+json (real gunicorn)."""
from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.support.gunicorn import gunicorn_server
from tests.support.problems import PROBLEM


@pytest.fixture(scope="module")
def gunicorn_address(settings, tmp_path_factory):
    with gunicorn_server(settings, tmp_path_factory.mktemp("gunicorn")) as base:
        url = urlsplit(base)
        yield url.hostname, url.port


def raw_exchange(address, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes no HTTP client library would send; read the whole answer (gunicorn closes after it)."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass  # gunicorn closed with part of the oversized request unread: the answer came first
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(("request_bytes", "status", "slug"), [
    (b"GET /v1/jobs/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri-too-long"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431,
     "request-header-fields-too-large"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n", 431,
     "request-header-fields-too-large"),
    (b"NOT A REQUEST LINE AT ALL\r\n\r\n", 400, "bad-request"),
    (b"GET /healthz HTTP/1.1\r\nBad Header Name: x\r\n\r\n", 400, "bad-request"),
], ids=["long-uri", "large-header", "many-headers", "bad-request-line", "bad-header-name"])
def test_requests_refused_before_the_app_answer_problem_json(gunicorn_address, settings, request_bytes, status,
                                                             slug):
    answered, headers, body = raw_exchange(gunicorn_address, request_bytes)
    assert answered == status, body[:300]
    assert headers["content-type"] == PROBLEM
    assert int(headers["content-length"]) == len(body)
    problem = json.loads(body)
    assert problem["type"] == settings.problem_base_uri + slug
    assert problem["status"] == status and problem["title"]
    assert b"<html" not in body.lower()


def test_a_request_the_app_sees_still_gets_the_apps_own_problem(gunicorn_address):
    answered, headers, body = raw_exchange(gunicorn_address, b"GET /v1/jobs/not-a-job HTTP/1.1\r\nHost: x\r\n"
                                                             b"Connection: close\r\n\r\n")
    assert answered in (401, 404) and headers["content-type"] == PROBLEM
    assert json.loads(body)["instance"] == "/v1/jobs/not-a-job"
