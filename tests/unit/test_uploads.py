"""Bulk upload parsing: every format, row numbers of invalid rows, whole-upload refusals."""
from __future__ import annotations

import io
import json

import pytest

from api.intake.uploads import (
    MAX_REPORTED_ERRORS,
    UploadLimits,
    UploadRejected,
    format_of,
    parse_csv,
    parse_elements,
    parse_json_stream,
    parse_jsonl,
)
from db.batches import NewItem, plan_chunks
from workers.batching import forward_passes

LIMITS = UploadLimits(max_items=100, max_text_chars=50)


def stream(text: str | bytes) -> io.BytesIO:
    return io.BytesIO(text.encode() if isinstance(text, str) else text)


def rows_and_codes(parsed):
    return [(error.row, error.code) for error in parsed.errors]


def test_json_elements_may_be_strings_or_objects_and_bad_rows_are_numbered():
    parsed = parse_elements(
        ["plain text", {"text": "with id", "id": "a-1"}, {"text": "int id", "id": 7}, 42, {"id": "x"},
         {"text": "   "}, {"text": "x" * 51}, {"text": "ok", "id": True}, {"text": "extra", "lang": "en"}],
        LIMITS,
    )
    assert parsed.format == "json"
    assert [(item.row, item.text, item.client_id) for item in parsed.items] == [
        (1, "plain text", None), (2, "with id", "a-1"), (3, "int id", "7"), (9, "extra", None)]
    assert rows_and_codes(parsed) == [(4, "invalid-item"), (5, "invalid-text"), (6, "empty-text"),
                                      (7, "text-too-long"), (8, "invalid-id")]
    assert parsed.invalid == 5 and parsed.rows == 9


def test_json_file_upload_with_a_byte_order_mark():
    data = b"\xef\xbb\xbf" + json.dumps(["one", "two"]).encode()
    assert [item.text for item in parse_json_stream(stream(data), LIMITS).items] == ["one", "two"]


def test_jsonl_rows_are_line_numbers_and_blank_lines_are_skipped():
    body = '{"text": "first", "id": "a"}\n\n"second"\n{not json}\n{"text": ""}\n\xff\n{"text": "last"}\n'
    raw = body.encode().replace("\xff".encode(), b"\xff")
    parsed = parse_jsonl(stream(raw), LIMITS)
    assert [(item.row, item.text) for item in parsed.items] == [(1, "first"), (3, "second"), (7, "last")]
    assert rows_and_codes(parsed) == [(4, "invalid-json"), (5, "empty-text"), (6, "invalid-encoding")]


def test_csv_needs_a_text_column_and_numbers_records_after_the_header():
    body = 'id,Text,other\nc1,"Hello, world",x\nc2,"multi\nline text",y\nc3,,z\nc4\n'
    parsed = parse_csv(stream(body), LIMITS)
    assert [(item.row, item.client_id, item.text) for item in parsed.items] == [
        (1, "c1", "Hello, world"), (2, "c2", "multi\nline text")]
    assert rows_and_codes(parsed) == [(3, "empty-text"), (4, "invalid-text")]


def test_csv_without_a_text_column_is_refused_whole():
    with pytest.raises(UploadRejected) as refused:
        parse_csv(stream("id,body\n1,hello\n"), LIMITS)
    assert refused.value.slug == "invalid-csv-header"


def test_csv_in_another_encoding_is_refused():
    with pytest.raises(UploadRejected) as refused:
        parse_csv(stream("text\ncaf\xe9\n".encode("latin-1")), LIMITS)
    assert refused.value.slug == "invalid-encoding"


@pytest.mark.parametrize("parse, body", [
    (parse_jsonl, "\n".join(f'"t{i}"' for i in range(101))),
    (parse_csv, "text\n" + "\n".join(f"t{i}" for i in range(101))),
])
def test_more_rows_than_allowed_refuse_the_upload(parse, body):
    with pytest.raises(UploadRejected) as refused:
        parse(stream(body), LIMITS)
    assert refused.value.status == 413 and refused.value.slug == "too-many-items"


def test_too_many_json_elements_are_refused_before_any_row_is_read():
    with pytest.raises(UploadRejected) as refused:
        parse_elements(["x"] * 101, LIMITS)
    assert refused.value.slug == "too-many-items"


def test_an_upload_without_valid_rows_is_refused_with_its_errors():
    with pytest.raises(UploadRejected) as refused:
        parse_elements([{"text": ""}, 3], LIMITS)
    assert refused.value.slug == "no-valid-items"
    assert [error["row"] for error in refused.value.extensions["errors"]] == [1, 2]
    with pytest.raises(UploadRejected) as empty:
        parse_jsonl(stream("\n\n"), LIMITS)
    assert empty.value.slug == "empty-batch"


def test_reported_errors_are_capped_but_all_are_counted():
    limits = UploadLimits(max_items=5000, max_text_chars=50)
    parsed = parse_elements(["ok"] + [""] * (MAX_REPORTED_ERRORS + 10), limits)
    assert len(parsed.errors) == MAX_REPORTED_ERRORS
    assert parsed.invalid == MAX_REPORTED_ERRORS + 10


@pytest.mark.parametrize("explicit, filename, media_type, expected", [
    ("CSV", None, None, "csv"), ("xml", "a.csv", None, None), (None, "items.NDJSON", None, "jsonl"),
    (None, "x.bin", "text/csv; charset=utf-8", "csv"), (None, None, "application/x-ndjson", "jsonl"),
    (None, None, "application/octet-stream", None),
])
def test_format_detection(explicit, filename, media_type, expected):
    assert format_of(explicit, filename, media_type) == expected


def test_chunks_group_texts_of_similar_length_longest_first():
    items = [NewItem(row, "x" * length) for row, length in enumerate([50, 1, 40, 2, 30, 3], 1)]
    assert plan_chunks(items, 2) == [[1, 3], [5, 6], [4, 2]]


def test_forward_passes_respect_the_size_and_the_token_budget():
    texts = ["x" * 400, "x" * 8, "x" * 40, "x" * 200]
    assert forward_passes(texts, max_size=3) == [[0, 3, 2], [1]]
    # Estimated tokens: 102, 52, 12, 4; at most 110 padded tokens per pass.
    assert forward_passes(texts, max_size=8, max_tokens=110) == [[0], [3, 2], [1]]
