"""Input the database or the encoder cannot take, refused where it enters with a 4xx problem.

PostgreSQL stores no NUL character (U+0000) in text or JSON, nor NaN or Infinity in JSON; a lone
surrogate (U+D800) has no UTF-8 encoding; JSON nested a thousand levels deep exhausts the parser's
recursion; a cursor or row number may not fit its column. Each reaches the API through a JSON
body, a multipart form, a query string or an uploaded batch file.
"""
from __future__ import annotations

import base64
import io
import json

import pytest

from tests.support.problems import assert_problem

DEEP = "[" * 1000 + "]" * 1000
TEXT_JOB = {"type": "emotion", "input": {"text": "Thank you so much!"}}


def nested(levels: int) -> str:
    """A job body whose ``options`` holds arrays nested so the whole document is ``levels`` deep."""
    return '{"type": "emotion", "input": {"text": "hi"}, "options": {"x": ' + "[" * (levels - 2) + "]" * (
        levels - 2) + "}}"


def post_json(client, path, raw: str, headers=None):
    return client.post(path, data=raw.encode("utf-8", "surrogatepass"), content_type="application/json",
                       headers=headers or {})


def field_of(problem: dict) -> str:
    return problem["errors"][0]["field"]


# --- POST /v1/jobs ------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    ({"type": "emotion", "input": {"text": "I love\u0000 it"}}, "input.text"),
    ({"type": "analyze", "input": {"text": "Hi."}, "services": ["emotion\u0000"]}, "services.0"),
    ({"type": "emotion", "input": {"text": "hi"}, "options": {"k\u0000": 1}}, "options"),
    ({"type": "emotion", "input": {"text": "hi"}, "webhook": {"url": "https://hooks.example.com/a\u0000"}},
     "webhook.url"),
])
def test_a_nul_character_anywhere_in_a_job_is_a_422_naming_the_field(client, make_tenant, body, field):
    response = client.post("/v1/jobs", json=body, headers=make_tenant().headers)
    assert field_of(assert_problem(response, 422, "invalid-characters")) == field


def test_a_lone_surrogate_in_job_text_is_a_422(client, make_tenant):
    raw = '{"type": "emotion", "input": {"text": "broken \\ud800 pair"}}'
    problem = assert_problem(post_json(client, "/v1/jobs", raw, make_tenant().headers), 422, "invalid-characters")
    assert field_of(problem) == "input.text"


def test_json_nested_too_deep_is_refused_on_jobs(client, make_tenant):
    tenant = make_tenant()
    assert_problem(post_json(client, "/v1/jobs", DEEP, tenant.headers), 422, "json-too-deep")
    problem = assert_problem(post_json(client, "/v1/jobs", nested(65), tenant.headers), 422, "json-too-deep")
    assert problem["max_depth"] == 64
    assert post_json(client, "/v1/jobs", json.dumps(TEXT_JOB), tenant.headers).status_code == 202


def test_a_nul_in_a_query_parameter_is_a_400(client, make_tenant):
    response = client.get("/v1/jobs?type=emo%00tion", headers=make_tenant().headers)
    assert assert_problem(response, 400, "invalid-characters")["errors"][0]["field"] == "type"


def test_a_nul_in_the_idempotency_key_is_a_400(client, make_tenant):
    response = client.post("/v1/jobs", json=TEXT_JOB, headers={**make_tenant().headers, "Idempotency-Key": "k\x00"})
    assert_problem(response, 400, "invalid-idempotency-key")


# --- multipart forms ----------------------------------------------------------------------------

BOUNDARY = "samo-boundary"


def multipart(*parts: tuple[str, str]) -> dict:
    """A raw multipart body of (Content-Disposition parameters, content) parts."""
    body = "".join(f"--{BOUNDARY}\r\nContent-Disposition: form-data{params}\r\n\r\n{content}\r\n"
                   for params, content in parts) + f"--{BOUNDARY}--\r\n"
    return {"data": body.encode(), "content_type": f"multipart/form-data; boundary={BOUNDARY}"}


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/batches"])
def test_a_multipart_part_without_a_name_is_a_400(client, make_tenant, path):
    body = multipart(("", "nameless"), ('; name="type"', "transcribe"))
    assert_problem(client.post(path, headers=make_tenant().headers, **body), 400, "invalid-multipart")


def test_a_nul_in_a_form_field_or_file_name_is_a_422(client, make_tenant):
    tenant = make_tenant()
    fields = multipart(('; name="type"', "transcribe"), ('; name="options"', '{"language": "e\\u0000n"}'),
                       ('; name="file"; filename="a.wav"', "RIFF"))
    problem = assert_problem(client.post("/v1/jobs", headers=tenant.headers, **fields), 422, "invalid-characters")
    assert field_of(problem) == "options.language"
    response = client.post("/v1/jobs", data={"type": "transcribe", "file": (io.BytesIO(b"RIFF"), "a\x00.wav")},
                           content_type="multipart/form-data", headers=tenant.headers)
    assert field_of(assert_problem(response, 422, "invalid-characters")) == "file"


def test_form_json_fields_nested_too_deep_are_refused(client, make_tenant):
    response = client.post("/v1/jobs", data={"type": "transcribe", "webhook": DEEP,
                                             "file": (io.BytesIO(b"RIFF"), "a.wav")},
                           content_type="multipart/form-data", headers=make_tenant().headers)
    assert_problem(response, 422, "json-too-deep")


# --- POST /v1/batches ---------------------------------------------------------------------------

def create_batch(client, tenant, **kwargs):
    return client.post("/v1/batches", headers=tenant.headers, **kwargs)


def test_a_nul_in_a_json_batch_refuses_the_document_naming_the_item(client, make_tenant):
    tenant = make_tenant()
    response = create_batch(client, tenant, json={"items": ["fine", {"text": "bad\u0000", "id": 2}]})
    assert field_of(assert_problem(response, 422, "invalid-characters")) == "items.1.text"
    response = create_batch(client, tenant, json=["fine", {"text": "ok", "id": "x\u0000"}])
    assert field_of(assert_problem(response, 422, "invalid-characters")) == "1.id"


def test_json_nested_too_deep_is_refused_on_batches_as_body_or_file(client, make_tenant):
    tenant = make_tenant()
    assert_problem(post_json(client, "/v1/batches", DEEP, tenant.headers), 422, "json-too-deep")
    upload = {"file": (io.BytesIO(DEEP.encode()), "items.json")}
    assert_problem(create_batch(client, tenant, data=upload, content_type="multipart/form-data"),
                   422, "json-too-deep")


def test_a_json_batch_file_with_a_nul_is_refused_like_a_json_body(client, make_tenant):
    upload = {"file": (io.BytesIO(json.dumps(["ok", "b\u0000d"]).encode()), "items.json")}
    response = create_batch(client, make_tenant(), data=upload, content_type="multipart/form-data")
    assert field_of(assert_problem(response, 422, "invalid-characters")) == "1"


def test_jsonl_lines_with_unstorable_strings_or_deep_nesting_are_row_errors(client, make_tenant):
    lines = ['{"text": "fine"}', '{"text": "nul\\u0000"}', '{"text": "ok", "id": "i\\u0000d"}',
             '{"text": "half \\udc00 pair"}', DEEP, '"also fine"']
    response = create_batch(client, make_tenant(), data="\n".join(lines), content_type="application/x-ndjson")
    assert response.status_code == 202, response.get_data(as_text=True)
    batch = response.get_json()
    assert batch["total_items"] == 2
    assert [(e["row"], e["code"]) for e in batch["errors"]] == [
        (2, "invalid-characters"), (3, "invalid-characters"), (4, "invalid-characters"), (5, "json-too-deep")]


def test_csv_cells_with_a_nul_are_row_errors(client, make_tenant):
    csv_file = (io.BytesIO(b"id,text\na,Great work!\nb,nul\x00here\nc\x00,fine\n"), "items.csv")
    response = create_batch(client, make_tenant(), data={"file": csv_file}, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_data(as_text=True)
    batch = response.get_json()
    assert batch["total_items"] == 1
    assert [(e["row"], e["code"]) for e in batch["errors"]] == [(2, "invalid-characters"), (3, "invalid-characters")]


# --- webhooks and tokens ------------------------------------------------------------------------

def test_a_nul_in_a_webhook_description_is_a_422(client, make_tenant):
    tenant = make_tenant()
    body = {"url": "https://hooks.example.com/samo", "description": "prod\u0000"}
    response = client.post("/v1/webhooks/endpoints", json=body, headers=tenant.headers)
    assert field_of(assert_problem(response, 422, "invalid-characters")) == "description"
    created = client.post("/v1/webhooks/endpoints", json={"url": body["url"]}, headers=tenant.headers).get_json()
    response = client.patch(f"/v1/webhooks/endpoints/{created['id']}", json={"description": "x\u0000"},
                            headers=tenant.headers)
    assert_problem(response, 422, "invalid-characters")


def test_json_nested_too_deep_is_refused_on_webhook_endpoints(client, make_tenant):
    assert_problem(post_json(client, "/v1/webhooks/endpoints", DEEP, make_tenant().headers), 422, "json-too-deep")


def test_the_unauthenticated_token_endpoint_refuses_deep_json_and_surrogates(client):
    assert_problem(post_json(client, "/v1/auth/token", DEEP), 422, "json-too-deep")
    raw = '{"grant_type": "api_key", "api_key": "samo_\\ud800"}'
    assert field_of(assert_problem(post_json(client, "/v1/auth/token", raw), 422, "invalid-characters")) == "api_key"


def test_a_cursor_hiding_deep_json_is_an_invalid_cursor(client, make_tenant):
    cursor = base64.urlsafe_b64encode(DEEP.encode()).decode().rstrip("=")
    for path in ("/v1/jobs", "/v1/batches", "/v1/webhooks/deliveries"):
        assert_problem(client.get(f"{path}?cursor={cursor}", headers=make_tenant().headers), 400, "invalid-cursor")


@pytest.mark.parametrize("cursor", ["\u00b2", "9" * 12, "2147483648", "-1", "1.5"])
def test_a_row_cursor_the_row_column_cannot_hold_is_an_invalid_cursor(client, make_tenant, cursor):
    tenant = make_tenant()
    batch = create_batch(client, tenant, json=["one"]).get_json()
    response = client.get(f"/v1/batches/{batch['id']}/jobs", query_string={"cursor": cursor}, headers=tenant.headers)
    assert_problem(response, 400, "invalid-cursor")


def test_nan_and_infinity_are_refused_on_every_json_input(client, make_tenant):
    tenant = make_tenant()
    raw = '{"type": "summarize", "input": {"text": "One. Two."}, "options": {"ratio": NaN}}'
    assert field_of(assert_problem(post_json(client, "/v1/jobs", raw, tenant.headers), 422,
                                   "invalid-number")) == "options.ratio"
    lines = '{"text": "fine"}\n{"text": "ok", "id": Infinity}\n'
    batch = create_batch(client, tenant, data=lines, content_type="application/x-ndjson").get_json()
    assert [(e["row"], e["code"]) for e in batch["errors"]] == [(2, "invalid-number")]
