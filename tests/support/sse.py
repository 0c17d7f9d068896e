"""Reading Server-Sent Events (the WHATWG format) from a streamed response, as an EventSource would."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    id: int | None
    event: str
    data: dict
    retry: int | None = None


@dataclass(frozen=True)
class Comment:
    text: str


def parse_stream(lines: Iterable[str]) -> Iterator[Event | Comment]:
    """Events and comments, in order; a block with only ``retry:`` is an event named ``retry``."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if fields:
                name = fields.get("event", "retry" if set(fields) == {"retry"} else "message")
                yield Event(int(fields["id"]) if "id" in fields else None, name,
                            json.loads(fields["data"]) if "data" in fields else {},
                            int(fields["retry"]) if "retry" in fields else None)
            fields = {}
            continue
        if line.startswith(":"):
            yield Comment(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value


def text_lines(chunks: Iterable[str | bytes]) -> Iterator[str]:
    """Lines of a stream delivered in arbitrary chunks."""
    pending = ""
    for chunk in chunks:
        pending += chunk.decode() if isinstance(chunk, bytes) else chunk
        *complete, pending = pending.split("\n")
        yield from complete
    if pending:
        yield pending


def events_of(chunks: Iterable[str | bytes]) -> list[Event]:
    """Every event of a whole (ended) stream, comments left out."""
    return [item for item in parse_stream(text_lines(chunks)) if isinstance(item, Event)]


def read_http_events(response) -> Iterator[Event | Comment]:
    """Events and comments of a ``requests`` response opened with ``stream=True``, as they arrive."""
    return parse_stream(text_lines(response.iter_content(chunk_size=None)))
