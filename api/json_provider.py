"""Flask's JSON responses encoded by orjson (C) instead of the standard library.

Every API response is a JSON document, so its encoder is on every request's path
(docs/benchmarks.md has the comparison). Reading stays with the stdlib: orjson reads an integer
beyond 64 bits as a float, losing
digits a client sent.

The output stays what Flask's default provider gives: datetimes and dataclasses still go
through Flask's own ``default`` (``OPT_PASSTHROUGH_*``; Flask writes dates as HTTP dates),
non-string keys are written as strings, and pretty printing (``compact``, debug mode) as
well as any call with stdlib options (``indent=...``) is left to the stdlib. Two differences
a client can see, both still valid JSON: non-ASCII text is written as UTF-8 rather than
``\\uXXXX`` escapes, and NaN and infinities become ``null``. What orjson refuses (an integer
beyond 64 bits, say) is encoded by the stdlib instead, with its answer and errors.
"""
from __future__ import annotations

import typing as t

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonProvider(DefaultJSONProvider):
    #: Documents keep the order their code writes them in (id, type, status, ...).
    sort_keys = False

    def _encode(self, obj: t.Any, newline: bool = False) -> bytes | None:
        """orjson's encoding, or None where only the stdlib can say what to do."""
        options = _OPTIONS | (orjson.OPT_SORT_KEYS if self.sort_keys else 0)
        if newline:
            options |= orjson.OPT_APPEND_NEWLINE
        try:
            return orjson.dumps(obj, default=self.default, option=options)
        except orjson.JSONEncodeError:
            return None

    def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        encoded = None if kwargs else self._encode(obj)
        return encoded.decode() if encoded is not None else super().dumps(obj, **kwargs)

    def response(self, *args: t.Any, **kwargs: t.Any) -> Response:
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        encoded = self._encode(obj, newline=True)
        if encoded is None:
            return super().response(obj)
        return self._app.response_class(encoded, mimetype=self.mimetype)
