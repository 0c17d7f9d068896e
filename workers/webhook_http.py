"""Sending a webhook to a URL a customer chose, without letting it reach our own network.

A webhook URL is attacker-controlled input that makes our servers send requests (SSRF). So:

* the host is resolved once and every address must pass ``config.webhook_destinations``;
* the socket connects to the checked address itself (DNS is not asked again, so a rebinding
  answer cannot swap in an internal address), while the ``Host`` header, TLS SNI and
  certificate check use the name from the URL;
* no redirects are followed, no proxy from the environment is used, the connect time and the
  whole exchange are bounded, and at most ``max_response_bytes`` of the answer are read.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from config.webhook_destinations import ResolvedTarget


@dataclass(frozen=True)
class HttpOutcome:
    status_code: int | None
    latency_ms: int
    error: str | None = None
    retry_after: str | None = None
    location: str | None = None
    body_excerpt: str = ""


class _PinnedConnectionMixin:
    """Connect to the pre-checked addresses instead of resolving ``self.host`` again."""

    addresses: tuple[str, ...]
    on_socket: Callable[[socket.socket], None] = staticmethod(lambda sock: None)

    def _open_pinned_socket(self) -> socket.socket:
        last_error: OSError | None = None
        for address in self.addresses:
            try:
                sock = socket.create_connection((address, self.port), self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.on_socket(sock)
                return sock
            except OSError as error:
                last_error = error
        raise last_error or OSError("no address to connect to")


class PinnedHTTPConnection(_PinnedConnectionMixin, http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = self._open_pinned_socket()


class PinnedHTTPSConnection(_PinnedConnectionMixin, http.client.HTTPSConnection):
    def connect(self) -> None:
        sock = self._open_pinned_socket()
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def open_connection(target: ResolvedTarget, connect_timeout_s: float,
                    ca_certs: str | None = None) -> http.client.HTTPConnection:
    if target.scheme == "https":
        context = ssl.create_default_context(cafile=ca_certs)
        connection = PinnedHTTPSConnection(target.host, target.port, timeout=connect_timeout_s, context=context)
    else:
        connection = PinnedHTTPConnection(target.host, target.port, timeout=connect_timeout_s)
    connection.addresses = target.addresses
    return connection


class _Watchdog:
    """Shuts the socket down at the deadline, which ends any read blocked on it.

    It keeps its own reference: http.client hands the socket over to the response (and sets
    ``connection.sock`` to None) when the receiver will close the connection.
    """

    def __init__(self, total_timeout_s: float):
        self.sock: socket.socket | None = None
        self.fired = threading.Event()
        self._timer = threading.Timer(total_timeout_s, self._abort)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        self.sock = sock

    def _abort(self) -> None:
        self.fired.set()
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def post(target: ResolvedTarget, body: bytes, headers: dict[str, str], *, connect_timeout_s: float,
         total_timeout_s: float, max_response_bytes: int, ca_certs: str | None = None) -> HttpOutcome:
    """POST once; never raises for network trouble, which comes back as ``HttpOutcome.error``.

    A timer shuts the socket down when ``total_timeout_s`` is up, so a receiver that trickles
    its answer a byte at a time cannot hold the worker longer than that. A status line that
    arrived in time counts even if the (capped, best-effort) body read is then cut short.
    """
    started = time.monotonic()
    connection = open_connection(target, min(connect_timeout_s, total_timeout_s), ca_certs)

    def failed(error: str) -> HttpOutcome:
        return HttpOutcome(None, int((time.monotonic() - started) * 1000), error=error)

    with _Watchdog(total_timeout_s) as watchdog:
        try:
            connection.on_socket = watchdog.watch
            connection.connect()
            connection.sock.settimeout(max(0.05, total_timeout_s - (time.monotonic() - started)))
            connection.request("POST", target.request_target, body=body, headers=headers)
            response = connection.getresponse()
            try:
                excerpt = response.read(max_response_bytes) if max_response_bytes > 0 else b""
            except (OSError, http.client.HTTPException):
                excerpt = b""
            return HttpOutcome(
                status_code=response.status,
                latency_ms=int((time.monotonic() - started) * 1000),
                retry_after=response.getheader("Retry-After"),
                location=response.getheader("Location"),
                body_excerpt=excerpt.decode("utf-8", errors="replace"),
            )
        except ssl.SSLError as error:
            return failed(f"TLS error: {error.reason or error}")
        except (OSError, http.client.HTTPException) as error:
            if watchdog.fired.is_set() or isinstance(error, TimeoutError):
                return failed(f"timed out after {int((time.monotonic() - started) * 1000)} ms")
            return failed(f"connection error: {type(error).__name__}: {error}")
        finally:
            connection.close()
