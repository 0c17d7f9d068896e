"""Request bodies made as they are sent: a batch upload streamed from a file or generated from items,
never loaded whole into memory; an audio file for a job's form."""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

FILE_CHUNK_BYTES = 64 * 1024
#: Items per chunk of a generated JSONL body.
ITEMS_PER_CHUNK = 500
CONTENT_TYPES = {".csv": "text/csv", ".jsonl": "application/x-ndjson", ".ndjson": "application/x-ndjson",
                 ".json": "application/json"}
FORMAT_CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "json": "application/json"}


@dataclass(frozen=True)
class UploadBody:
    """``chunks()`` starts the body from its beginning; ``resendable`` says whether it may be called again."""

    content_type: str
    chunks: Callable[[], Iterator[bytes]]
    resendable: bool
    total: int | None
    unit: str


def batch_body(source: str | os.PathLike | Iterable[Any], fmt: str | None = None) -> UploadBody:
    """A path is streamed as it is (its format from ``fmt`` or its suffix); items (strings or dicts
    with ``text`` and optionally ``id``, ``subject``, ``occurred_at``, ``metadata``) become JSONL."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        content_type = FORMAT_CONTENT_TYPES.get(fmt or "") or CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise ValueError(f"Cannot tell the format of {path.name}: pass format='csv', 'jsonl' or 'json'.")
        return UploadBody(content_type, lambda: file_chunks(path), True, path.stat().st_size, "B")
    if isinstance(source, (bytes, dict)):
        raise TypeError("batches.upload takes a path, or a list or iterable of texts or dicts.")
    resendable = isinstance(source, (list, tuple))
    total = len(source) if resendable else None
    return UploadBody("application/x-ndjson", lambda: jsonl_chunks(source), resendable, total, "item")


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(FILE_CHUNK_BYTES):
            yield chunk


def jsonl_line(item: Any) -> str:
    if not isinstance(item, (str, dict)):
        raise TypeError(f"A batch item is a text or a dict with 'text', not {type(item).__name__}.")
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=_iso) + "\n"


def _iso(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def jsonl_chunks(items: Iterable[Any]) -> Iterator[bytes]:
    lines: list[str] = []
    for item in items:
        lines.append(jsonl_line(item))
        if len(lines) >= ITEMS_PER_CHUNK:
            yield "".join(lines).encode("utf-8")
            lines = []
    if lines:
        yield "".join(lines).encode("utf-8")


def with_progress(body: UploadBody, progress: bool) -> UploadBody:
    """The same body, advancing a tqdm bar (``pip install samo-brain[progress]``) as it is sent."""
    if not progress:
        return body
    try:
        from tqdm.auto import tqdm
    except ImportError as error:
        raise ImportError("progress=True needs tqdm: pip install 'samo-brain[progress]'") from error

    def chunks() -> Iterator[bytes]:
        with tqdm(total=body.total, unit=body.unit, unit_scale=body.unit == "B", desc="upload") as bar:
            for chunk in body.chunks():
                yield chunk
                bar.update(len(chunk) if body.unit == "B" else chunk.count(b"\n"))
    return UploadBody(body.content_type, chunks, body.resendable, body.total, body.unit)


def audio_file(audio: str | os.PathLike | bytes | BinaryIO) -> tuple[str, bytes]:
    """A recording for a job's ``file`` part: read once, so that a retry sends it again."""
    if isinstance(audio, (str, os.PathLike)):
        path = Path(audio)
        return path.name, path.read_bytes()
    if isinstance(audio, bytes):
        return "audio", audio
    return Path(getattr(audio, "name", "audio")).name, audio.read()
