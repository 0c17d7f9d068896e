"""The SDK's pure parts: the SSE parser, Retry-After, the retry policy and the generated upload bodies."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from samo._calls import Call, EventParser, RetryPolicy, events_unavailable, next_poll_interval
from samo._uploads import batch_body, jsonl_chunks
from samo.errors import parse_retry_after


def feed(parser: EventParser, text: str) -> list:
    return [event for line in text.split("\n") if (event := parser.feed(line)) is not None]


def test_events_are_parsed_with_ids_names_multiline_data_and_comments_skipped():
    parser = EventParser()
    events = feed(parser, ': keep-alive\n\nid: 1\nevent: status\ndata: {"status":\ndata: "running"}\n\n'
                          'id: 2\ndata:plain text\n\nevent: done')
    assert [(e.id, e.event, e.data) for e in events] == [("1", "status", {"status": "running"}),
                                                          ("2", "message", "plain text")]
    assert parser.last_id == "2"
    assert feed(parser, 'data: {"x": 1}\n\n')[0].event == "done"


def test_retry_after_in_seconds_or_as_an_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(later) <= 30


def response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_the_policy_retries_429_and_503_as_asked_within_bounds():
    policy, call = RetryPolicy(max_retries=2, max_wait_s=10), Call("GET", "/v1/jobs")
    assert policy.delay_after_status(call, 0, response(429, **{"Retry-After": "2"})) == 2.0
    assert 0 < policy.delay_after_status(call, 1, response(503)) <= 1.0
    assert policy.delay_after_status(call, 2, response(503)) is None
    assert policy.delay_after_status(call, 0, response(429, **{"Retry-After": "11"})) is None
    assert policy.delay_after_status(call, 0, response(500)) is None
    one_shot = Call("POST", "/v1/batches", headers={"Idempotency-Key": "k"}, resendable=False)
    assert policy.delay_after_status(one_shot, 0, response(429, **{"Retry-After": "1"})) is None


def test_broken_connections_are_retried_only_where_a_repeat_is_harmless():
    policy = RetryPolicy()
    assert policy.delay_after_error(Call("GET", "/v1/jobs"), 0) is not None
    assert policy.delay_after_error(Call("POST", "/v1/jobs", headers={"Idempotency-Key": "k"}), 0) is not None
    assert policy.delay_after_error(Call("POST", "/v1/jobs/x/cancel"), 0) is None


def test_polling_backs_off_and_honours_retry_after():
    assert next_poll_interval(1.0, response(200)) == 1.5
    assert next_poll_interval(4.0, response(200)) == 5.0
    assert next_poll_interval(0.25, response(200, **{"Retry-After": "2"})) == 2.0


def test_a_missing_route_means_no_events_and_a_missing_job_does_not():
    assert events_unavailable(404, "not-found", "")
    assert events_unavailable(404, "about:blank", "text/html")
    assert not events_unavailable(404, "job-not-found", "")
    assert events_unavailable(200, None, "application/json")
    assert not events_unavailable(200, None, "text/event-stream; charset=utf-8")


def test_items_become_jsonl_chunks_generated_lazily():
    def items():
        yield "plain"
        yield {"text": "with id", "id": "r2", "occurred_at": datetime(2026, 1, 2, tzinfo=UTC)}
        raise AssertionError("read past what was asked for")

    first = next(jsonl_chunks(item for n, item in zip(range(2), items(), strict=False)))
    lines = [json.loads(line) for line in first.decode().splitlines()]
    assert lines == ["plain", {"text": "with id", "id": "r2", "occurred_at": "2026-01-02T00:00:00+00:00"}]


def test_a_list_is_resendable_and_a_generator_is_not(tmp_path):
    assert batch_body(["a"]).resendable and batch_body(["a"]).total == 1
    assert not batch_body(text for text in ["a"]).resendable
    path = tmp_path / "rows.jsonl"
    path.write_text('"a"\n')
    body = batch_body(path)
    assert (body.content_type, body.total, b"".join(body.chunks())) == ("application/x-ndjson", 4, b'"a"\n')
    with pytest.raises(ValueError):
        batch_body(tmp_path / "rows.txt")
