"""What the clients' algorithms ask their driver to do, written once for both clients (sans-I/O).

An algorithm (``samo._client._BaseClient._*_steps``) is a generator: it yields a step and gets
its outcome back (or the step's exception thrown in). ``Client`` performs the steps with httpx's
blocking calls and ``time.sleep``; ``AsyncClient`` awaits httpx's async calls and ``asyncio.sleep``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Send:
    """Send the request; the outcome is the response (streamed: its body is read by ``NextLine``)."""

    request: httpx.Request
    stream: bool = False


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Read:
    """Read a streamed response's whole body (an error answer's problem document)."""

    response: httpx.Response


@dataclass(frozen=True)
class NextLine:
    """The next line of a streamed response's body, or None at its end."""

    response: httpx.Response


@dataclass(frozen=True)
class Close:
    response: httpx.Response


@dataclass(frozen=True)
class Item:
    """A value for the consumer of an iterating algorithm (a list's item, a stream's event)."""

    value: Any
