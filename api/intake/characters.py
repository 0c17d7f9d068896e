"""Strings and numbers the database cannot store, and JSON nested too deep, found where input enters.

PostgreSQL keeps no NUL character (U+0000) in a text or JSON column, and a lone surrogate
(U+D800 to U+DFFF, which JSON's ``\\u`` escapes can spell) has no UTF-8 encoding: both would
fail at the INSERT or when the body is fingerprinted, long after the request was read. A
document nested a thousand levels deep exhausts the parser's recursion, and every later walk
of it (validation, encoding) recurses as deep, so nesting is bounded at :data:`MAX_JSON_DEPTH`.

Python's parser also reads ``NaN`` and ``Infinity``, which are not JSON, and turns ``1e999``
into an infinity: no JSON column stores either, so a number must be finite.

Raw NUL and surrogates cannot occur in JSON text (control characters in strings are a syntax
error, and the bytes must decode as Unicode): they arrive as escapes, found once the document
is parsed. Other input (form fields, file names, CSV cells, query strings) is checked as text.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

MAX_JSON_DEPTH = 64

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

Path = Sequence[str | int]


class UnsafeInput(ValueError):
    """Input refused before it reaches the database; ``slug``, ``title`` and ``detail`` make its problem."""

    slug = "unsafe-input"
    title = "Unsafe input"

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    @property
    def detail(self) -> str:
        return f"`{self.field}` {self.message}."

    def extensions(self) -> dict:
        return {"errors": [{"field": self.field, "message": self.message}]}


class InvalidCharacters(UnsafeInput):
    slug = "invalid-characters"
    title = "Invalid characters"


class InvalidNumber(UnsafeInput):
    slug = "invalid-number"
    title = "Invalid number"


class JsonTooDeep(UnsafeInput):
    slug = "json-too-deep"
    title = "JSON nested too deep"

    @property
    def detail(self) -> str:
        return f"JSON documents may nest at most {MAX_JSON_DEPTH} levels of arrays and objects."

    def extensions(self) -> dict:
        return {"max_depth": MAX_JSON_DEPTH, **super().extensions()}


def field_name(path: Path) -> str:
    """A path as validation errors spell it (``items.3.text``); the root is ``body``."""
    return ".".join(str(part) for part in path) or "body"


def unstorable_reason(text: str) -> str | None:
    """Why the database cannot store ``text``, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (U+0000)"
    return f"contains a lone surrogate (U+{ord(found.group()):04X}), which is not a Unicode character"


def check_text(text: str, field: str) -> None:
    reason = unstorable_reason(text)
    if reason is not None:
        raise InvalidCharacters(field, reason)


def check_document(document: object, root: Path = ()) -> None:
    """Every string, object key and number of a parsed JSON document, and its depth; iterative, so
    a deep document cannot exhaust the recursion this check exists to protect."""
    pending: list[tuple[object, tuple, int]] = [(document, tuple(root), 1)]
    while pending:
        node, path, depth = pending.pop()
        if isinstance(node, str):
            check_text(node, field_name(path))
            continue
        if isinstance(node, float) and not math.isfinite(node):
            raise InvalidNumber(field_name(path), "is not a finite number (JSON has no NaN or Infinity)")
        if isinstance(node, dict):
            children = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise JsonTooDeep(field_name(path), f"nests deeper than {MAX_JSON_DEPTH} levels")
        for key, _child in children:
            if isinstance(key, str) and (reason := unstorable_reason(key)):
                raise InvalidCharacters(field_name(path), f"has an object key that {reason}")
        pending.extend((child, (*path, key), depth + 1) for key, child in reversed(children))


def parse_json(data: bytes | str, root: Path = ()) -> object:
    """``json.loads`` of a document the database can store.

    Raises :class:`UnsafeInput` for what this module refuses and ``ValueError`` (JSON syntax,
    undecodable bytes) for what is not JSON at all, which each caller reports in its own way.
    """
    try:
        document = json.loads(data)
    except RecursionError:
        raise JsonTooDeep(field_name(root), f"nests deeper than {MAX_JSON_DEPTH} levels") from None
    check_document(document, root)
    return document
