"""api.json_provider: orjson behind Flask's JSON, with the stdlib provider's output."""
from __future__ import annotations

import dataclasses
import decimal
import json
import uuid
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from api.json_provider import OrjsonProvider


@pytest.fixture
def flask_app():
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    return app


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_documents_read_back_as_the_stdlib_provider_writes_them(flask_app):
    stdlib = DefaultJSONProvider(flask_app)
    stdlib.sort_keys = False  # the stdlib cannot sort a mix of int and str keys
    document = {"id": uuid.UUID(int=7), "text": "Ünïcode 🎉 \"q\" \\", "n": [1, 2.5, None, True], 3: "int key",
                "when": datetime(2026, 11, 28, 9, 30, tzinfo=UTC), "price": decimal.Decimal("1.10"),
                "point": Point(1, 2), "big": 2**70}
    assert json.loads(flask_app.json.dumps(document)) == json.loads(stdlib.dumps(document))


def test_keys_keep_the_order_they_were_written_in(flask_app):
    assert flask_app.json.dumps({"id": 1, "type": "emotion", "status": "queued"}) == \
        '{"id":1,"type":"emotion","status":"queued"}'


def test_responses_are_compact_utf8_with_a_final_newline(flask_app):
    with flask_app.app_context():
        response = flask_app.json.response({"text": "é"})
    assert response.mimetype == "application/json"
    assert response.get_data() == '{"text":"é"}\n'.encode()


def test_debug_responses_are_pretty_printed_by_the_stdlib(flask_app):
    flask_app.debug = True
    with flask_app.app_context():
        response = flask_app.json.response({"a": 1})
    assert response.get_data(as_text=True) == '{\n  "a": 1\n}\n'


def test_stdlib_options_are_honoured(flask_app):
    assert flask_app.json.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a": 2, "b": 1}'


def test_reading_keeps_every_digit_of_a_big_integer(flask_app):
    assert flask_app.json.loads("[" + "9" * 30 + "]") == [int("9" * 30)]
