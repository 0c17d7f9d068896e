"""Bulk uploads read row by row: valid items, and the invalid rows by number, without failing the rest.

Three formats, one item shape (a text, an optional client ``id`` and the optional entry fields
``subject``, ``occurred_at`` and ``metadata``, checked as a job's are: ``api.intake.entries``):

* JSON: an array whose elements are strings or ``{"text": ..., "id": ...}`` objects;
* JSONL (NDJSON): one such element per line; blank lines are skipped;
* CSV: a header row with a ``text`` column and optionally ``id``, ``subject``, ``occurred_at`` and
  ``metadata`` (a JSON object) columns (other columns are ignored), UTF-8 with or without a
  byte-order mark.

A row is numbered from 1: the element of the array, the line of the JSONL file, the record
of the CSV file after its header. An invalid row (not an object, no text, an empty or too
long text, an unusable id, a line that is not JSON, a string the database cannot store or a
line nested too deep, see ``api.intake.characters``) is counted and reported by number; only
an upload with no valid row, too many rows or a broken CSV header fails as a whole
(:class:`UploadRejected`), as does a JSON file the API would refuse as a JSON body. Readers
take a binary stream and hold one row at a time, apart from JSON arrays, which are parsed whole.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from api.intake.characters import UnsafeInput, parse_json, unstorable_reason
from api.intake.entries import CHECKS, EntryFieldError, entry_of
from db.batches import NewItem

FORMATS = ("json", "jsonl", "csv")
#: The entry fields an item may carry, as keys of an element or columns of a CSV header.
ENTRY_FIELDS = tuple(CHECKS)
MAX_CLIENT_ID_CHARS = 255
#: How many row errors a batch keeps and reports; ``invalid_items`` counts them all.
MAX_REPORTED_ERRORS = 1000


@dataclass(frozen=True)
class RowError:
    row: int
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "code": self.code, "message": self.message}


class UploadRejected(Exception):
    """The upload as a whole cannot be taken; ``slug`` and ``status`` become a problem document."""

    def __init__(self, status: int, slug: str, title: str, detail: str, **extensions):
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.extensions = status, slug, title, detail, extensions


@dataclass
class ParsedUpload:
    format: str
    items: list[NewItem] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    invalid: int = 0

    @property
    def rows(self) -> int:
        return len(self.items) + self.invalid

    def add(self, outcome: NewItem | RowError) -> None:
        if isinstance(outcome, NewItem):
            self.items.append(outcome)
            return
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(outcome)


@dataclass(frozen=True)
class UploadLimits:
    max_items: int
    max_text_chars: int


def item_from(row: int, text: object, client_id: object, limits: UploadLimits,
              entry_fields: dict | None = None) -> NewItem | RowError:
    if not isinstance(text, str):
        found = "missing" if text is None else f"a {type(text).__name__}"
        return RowError(row, "invalid-text", f"`text` must be a string; it is {found}.")
    if not text.strip():
        return RowError(row, "empty-text", "`text` must contain non-whitespace characters.")
    if len(text) > limits.max_text_chars:
        return RowError(row, "text-too-long",
                        f"`text` has {len(text)} characters; the limit is {limits.max_text_chars}.")
    if client_id is not None and (isinstance(client_id, bool) or not isinstance(client_id, (str, int))):
        return RowError(row, "invalid-id", "`id` must be a string or an integer.")
    client_id = None if client_id in (None, "") else str(client_id)
    if client_id is not None and len(client_id) > MAX_CLIENT_ID_CHARS:
        return RowError(row, "invalid-id", f"`id` may be at most {MAX_CLIENT_ID_CHARS} characters.")
    for name, value in (("text", text), ("id", client_id)):
        if value is not None and (reason := unstorable_reason(value)):
            return RowError(row, "invalid-characters", f"`{name}` {reason}.")
    for name, value in (entry_fields or {}).items():
        if isinstance(value, str) and (reason := unstorable_reason(value)):
            return RowError(row, "invalid-characters", f"`{name}` {reason}.")
    try:
        entry = entry_of(entry_fields or {})
    except EntryFieldError as error:
        return RowError(row, f"invalid-{error.field.replace('_', '-')}", f"`{error.field}` {error.message}.")
    return NewItem(row, text, client_id, entry.subject, entry.occurred_at, entry.metadata)


def element_item(row: int, element: object, limits: UploadLimits) -> NewItem | RowError:
    """A JSON array element or JSONL line: a string, or an object with `text` and maybe `id`."""
    if isinstance(element, str):
        return item_from(row, element, None, limits)
    if not isinstance(element, dict):
        return RowError(row, "invalid-item", "Each item must be a string or an object with `text`.")
    return item_from(row, element.get("text"), element.get("id"), limits,
                     {name: element.get(name) for name in ENTRY_FIELDS})


def _check_count(rows: int, limits: UploadLimits) -> None:
    if rows > limits.max_items:
        raise UploadRejected(413, "too-many-items", "Too many items",
                             f"A batch may hold at most {limits.max_items} items.", max_items=limits.max_items)


def _finish(parsed: ParsedUpload) -> ParsedUpload:
    if parsed.rows == 0:
        raise UploadRejected(422, "empty-batch", "Empty batch", "The upload holds no items.")
    if not parsed.items:
        raise UploadRejected(422, "no-valid-items", "No valid items", "Every row of the upload is invalid.",
                             errors=[error.as_dict() for error in parsed.errors], invalid_items=parsed.invalid)
    return parsed


def parse_elements(elements: object, limits: UploadLimits) -> ParsedUpload:
    if not isinstance(elements, list):
        raise UploadRejected(422, "invalid-batch", "Invalid batch",
                             "Send a JSON array of items, or an object with an `items` array.")
    _check_count(len(elements), limits)
    parsed = ParsedUpload("json")
    for row, element in enumerate(elements, 1):
        parsed.add(element_item(row, element, limits))
    return _finish(parsed)


def parse_json_stream(stream: IO[bytes], limits: UploadLimits) -> ParsedUpload:
    try:
        elements = parse_json(io.TextIOWrapper(stream, encoding="utf-8-sig").read())
    except UnsafeInput as error:
        raise UploadRejected(422, error.slug, error.title, error.detail, **error.extensions()) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UploadRejected(400, "invalid-json", "Invalid JSON",
                             f"The uploaded file is not UTF-8 JSON: {error}.") from None
    return parse_elements(elements, limits)


def parse_jsonl(stream: IO[bytes], limits: UploadLimits) -> ParsedUpload:
    parsed = ParsedUpload("jsonl")
    for row, raw in enumerate(stream, 1):
        if row == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        if not raw.strip():
            continue
        try:
            element = parse_json(raw.decode("utf-8"))
        except UnicodeDecodeError:
            parsed.add(RowError(row, "invalid-encoding", "The line is not UTF-8."))
        except UnsafeInput as error:
            parsed.add(RowError(row, error.slug, error.detail))
        except json.JSONDecodeError as error:
            parsed.add(RowError(row, "invalid-json", f"The line is not JSON: {error.msg}."))
        else:
            parsed.add(element_item(row, element, limits))
        _check_count(parsed.rows, limits)
    return _finish(parsed)


def csv_records(stream: IO[bytes]) -> Iterator[list[str] | csv.Error]:
    """Records of a UTF-8 CSV stream; a record the csv module cannot read is yielded as its error."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield error


def header_columns(header: list[str]) -> dict[str, int]:
    """The position of each known column: `text`, and those of `id` and the entry fields present."""
    names = [name.strip().lower() for name in header]
    if "text" not in names:
        raise UploadRejected(422, "invalid-csv-header", "Invalid CSV header",
                             "The first row of a CSV upload must name its columns, one of them `text` "
                             f"(and optionally `id`, {', '.join(f'`{name}`' for name in ENTRY_FIELDS)}).",
                             columns=header[:20])
    return {name: names.index(name) for name in ("text", "id", *ENTRY_FIELDS) if name in names}


def parse_csv(stream: IO[bytes], limits: UploadLimits) -> ParsedUpload:
    parsed = ParsedUpload("csv")
    records = csv_records(stream)
    try:
        header = next(records, None)
        if header is None:
            raise UploadRejected(422, "empty-batch", "Empty batch", "The upload holds no items.")
        if isinstance(header, csv.Error):
            raise UploadRejected(422, "invalid-csv-header", "Invalid CSV header",
                                 f"The header row is unreadable: {header}.")
        columns = header_columns(header)
        for row, record in enumerate(records, 1):
            parsed.add(csv_item(row, record, columns, limits))
            _check_count(parsed.rows, limits)
    except UnicodeDecodeError:
        raise UploadRejected(422, "invalid-encoding", "Invalid encoding", "CSV uploads must be UTF-8.") from None
    return _finish(parsed)


def csv_item(row: int, record: list[str] | csv.Error, columns: dict[str, int],
             limits: UploadLimits) -> NewItem | RowError:
    if isinstance(record, csv.Error):
        return RowError(row, "invalid-csv-row", f"The record is not valid CSV: {record}.")
    cells = {name: record[index] for name, index in columns.items() if index < len(record)}
    return item_from(row, cells.get("text"), cells.get("id"), limits,
                     {name: cells.get(name) for name in ENTRY_FIELDS})


PARSERS = {"json": parse_json_stream, "jsonl": parse_jsonl, "csv": parse_csv}

_EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_MEDIA_TYPES = {
    "application/json": "json",
    "application/jsonl": "jsonl", "application/x-jsonl": "jsonl", "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl", "application/jsonlines": "jsonl",
    "text/csv": "csv", "application/csv": "csv",
}


def format_of(explicit: str | None, filename: str | None, media_type: str | None) -> str | None:
    """The format named explicitly, else by the file's extension, else by its media type."""
    if explicit:
        return explicit.strip().lower() if explicit.strip().lower() in FORMATS else None
    for extension, name in _EXTENSIONS.items():
        if (filename or "").lower().endswith(extension):
            return name
    return _MEDIA_TYPES.get((media_type or "").split(";")[0].strip().lower())


def parse_stream(fmt: str, stream: IO[bytes], limits: UploadLimits) -> ParsedUpload:
    return PARSERS[fmt](stream, limits)
