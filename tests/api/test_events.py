"""Event streams and stream tickets through the app: replays, the final `done`, ticket refusals.

Jobs here go to the `gpu` queue, which no test worker consumes, so they change only when the test
cancels them; streams are short (``events_max_stream_s``) so that one left waiting ends soon.
"""
from __future__ import annotations

import dataclasses
import hashlib
import time

import pytest

from tests.support.problems import assert_problem
from tests.support.sse import Comment, Event, parse_stream, text_lines

TEXT_JOB = {"type": "emotion", "input": {"text": "A quiet evening with friends."}}


@pytest.fixture(scope="module")
def client(settings):
    from api import create_app

    app = create_app(dataclasses.replace(settings, gpu_workers_enabled=True, events_max_stream_s=1.5,
                                         events_heartbeat_s=0.4, events_retry_ms=1234), {"TESTING": True})
    return app.test_client()


def submit(client, tenant) -> dict:
    response = client.post("/v1/jobs", json=TEXT_JOB, headers=tenant.headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def cancel(client, tenant, job_id: str) -> None:
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers).status_code == 200


def stream(client, path: str, headers: dict | None = None) -> tuple[object, list[Event | Comment]]:
    """The response and everything its stream sent, read to its end."""
    response = client.get(path, headers=headers or {}, buffered=False)
    if response.status_code != 200:
        return response, []
    items = list(parse_stream(text_lines(response.response)))
    response.close()
    return response, items


def events(items) -> list[Event]:
    return [item for item in items if isinstance(item, Event)]


def test_a_stream_on_a_finished_job_ends_at_once_with_done(client, make_tenant):
    tenant = make_tenant()
    job = submit(client, tenant)
    cancel(client, tenant, job["id"])
    started = time.monotonic()
    response, items = stream(client, f"/v1/jobs/{job['id']}/events", tenant.headers)
    assert time.monotonic() - started < 1.0
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache" and response.headers["X-Accel-Buffering"] == "no"
    [done] = events(items)
    stored = client.get(f"/v1/jobs/{job['id']}", headers=tenant.headers).get_json()
    assert done.event == "done" and done.data == stored and done.data["status"] == "canceled"
    assert done.id > 0


def test_a_waiting_stream_sends_its_history_keeps_alive_and_ends_with_a_retry_hint(client, make_tenant):
    tenant = make_tenant()
    job = submit(client, tenant)
    started = time.monotonic()
    _, items = stream(client, f"/v1/jobs/{job['id']}/events", tenant.headers)
    assert 1.4 <= time.monotonic() - started < 5
    sent = events(items)
    assert [(event.event, event.data) for event in sent[:1]] == [
        ("status", {"job_id": job["id"], "status": "queued"})]
    assert sent[-1].retry == 1234 and sent[-1].event == "retry"
    assert any(isinstance(item, Comment) and item.text == "keep-alive" for item in items)


def test_last_event_id_replays_what_came_after_it_then_done(client, make_tenant):
    tenant = make_tenant()
    job = submit(client, tenant)
    cancel(client, tenant, job["id"])
    path = f"/v1/jobs/{job['id']}/events"
    _, items = stream(client, path, {**tenant.headers, "Last-Event-ID": "0"})
    everything = events(items)
    assert [(event.event, event.data.get("status")) for event in everything] == [
        ("status", "queued"), ("status", "canceled"), ("done", "canceled")]
    ids = [event.id for event in everything]
    assert ids == sorted(set(ids))
    _, items = stream(client, path, {**tenant.headers, "Last-Event-ID": str(ids[0])})
    assert events(items) == everything[1:]


@pytest.mark.parametrize("value", ["soon", "-1", "1e3", "99999999999999999999"])
def test_a_malformed_last_event_id_is_a_400(client, make_tenant, value):
    tenant = make_tenant()
    job = submit(client, tenant)
    response = client.get(f"/v1/jobs/{job['id']}/events", headers={**tenant.headers, "Last-Event-ID": value})
    assert_problem(response, 400, "invalid-last-event-id")


def test_another_tenants_stream_is_not_found(client, make_tenant):
    job = submit(client, make_tenant())
    response = client.get(f"/v1/jobs/{job['id']}/events", headers=make_tenant().headers)
    assert_problem(response, 404, "job-not-found")


def test_a_batch_stream_starts_with_its_progress_and_ends_with_the_batch(client, make_tenant):
    tenant = make_tenant()
    created = client.post("/v1/batches", json=["Lovely.", "Awful."], headers=tenant.headers)
    assert created.status_code == 202, created.get_data(as_text=True)
    batch_id = created.get_json()["id"]
    _, items = stream(client, f"/v1/batches/{batch_id}/events", tenant.headers)
    first = events(items)[0]
    assert first.event == "progress" and first.data["batch_id"] == batch_id
    assert set(first.data) == {"batch_id", "status", "counts", "progress", "eta_s"}
    assert client.post(f"/v1/batches/{batch_id}/cancel", headers=tenant.headers).status_code == 200
    _, items = stream(client, f"/v1/batches/{batch_id}/events", tenant.headers)
    [done] = events(items)
    assert done.event == "done" and done.data == client.get(f"/v1/batches/{batch_id}",
                                                            headers=tenant.headers).get_json()


def issue(client, tenant, **body) -> dict:
    response = client.post("/v1/events/tickets", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_a_ticket_opens_its_stream_once(client, make_tenant):
    tenant = make_tenant()
    job = submit(client, tenant)
    cancel(client, tenant, job["id"])
    ticket = issue(client, tenant, job_id=job["id"])
    assert ticket["url"] == f"/v1/jobs/{job['id']}/events?ticket={ticket['ticket']}"
    assert ticket["expires_at"].endswith("Z") or ticket["expires_at"].endswith("+00:00")
    response, items = stream(client, ticket["url"])
    assert response.status_code == 200 and [event.event for event in events(items)] == ["done"]
    assert_problem(client.get(ticket["url"]), 401, "invalid-ticket")


def test_a_batch_ticket_opens_the_batch_stream(client, make_tenant):
    tenant = make_tenant()
    batch_id = client.post("/v1/batches", json=["Fine."], headers=tenant.headers).get_json()["id"]
    client.post(f"/v1/batches/{batch_id}/cancel", headers=tenant.headers)
    ticket = issue(client, tenant, batch_id=batch_id)
    assert ticket["url"].startswith(f"/v1/batches/{batch_id}/events?ticket=")
    response, items = stream(client, ticket["url"])
    assert [event.event for event in events(items)] == ["done"]


def test_an_expired_ticket_is_refused(client, make_tenant, redis):
    tenant = make_tenant()
    job = submit(client, tenant)
    ticket = issue(client, tenant, job_id=job["id"])
    key = f"samo:tickets:{hashlib.sha256(ticket['ticket'].encode()).hexdigest()}"
    assert 0 < redis.ttl(key) <= 60
    redis.pexpire(key, 1)
    time.sleep(0.05)
    assert_problem(client.get(ticket["url"]), 401, "invalid-ticket")


def test_a_ticket_for_another_stream_is_forbidden(client, make_tenant):
    tenant = make_tenant()
    first, second = submit(client, tenant), submit(client, tenant)
    ticket = issue(client, tenant, job_id=first["id"])
    assert_problem(client.get(f"/v1/jobs/{second['id']}/events?ticket={ticket['ticket']}"), 403,
                   "ticket-not-for-this-stream")


def test_a_ticket_is_not_a_credential_anywhere_else(client, make_tenant):
    tenant = make_tenant()
    job = submit(client, tenant)
    ticket = issue(client, tenant, job_id=job["id"])
    assert_problem(client.get(f"/v1/jobs/{job['id']}?ticket={ticket['ticket']}"), 401, "missing-credentials")
    assert_problem(client.get(f"{ticket['url']}", headers=tenant.headers), 400, "ambiguous-credentials")


def test_tickets_need_the_read_scope_and_the_callers_own_resource(client, make_tenant):
    tenant = make_tenant()
    job = submit(client, tenant)
    writer = make_tenant(scopes=["jobs:write"])
    own = submit(client, writer)
    assert_problem(client.post("/v1/events/tickets", json={"job_id": own["id"]}, headers=writer.headers),
                   403, "insufficient-scope")
    assert_problem(client.post("/v1/events/tickets", json={"job_id": job["id"]}, headers=make_tenant().headers),
                   404, "job-not-found")


@pytest.mark.parametrize("body", [{}, {"job_id": "not-a-uuid"}, {"job_id": None, "batch_id": None},
                                  {"job_id": "8b7f1c52-3a7c-4a52-9a4e-6f1d7a3e2b10",
                                   "batch_id": "8b7f1c52-3a7c-4a52-9a4e-6f1d7a3e2b10"}, {"stream": "x"}])
def test_a_ticket_request_names_exactly_one_stream(client, make_tenant, body):
    response = client.post("/v1/events/tickets", json=body, headers=make_tenant().headers)
    assert_problem(response, 422, "validation-error")


def test_long_lived_credentials_in_a_url_are_refused(client, make_tenant):
    tenant = make_tenant()
    for name in ("access_token", "api_key"):
        response = client.get(f"/v1/jobs?{name}={tenant.api_key}", headers=tenant.headers)
        assert_problem(response, 400, "credentials-in-url")
        assert tenant.api_key not in response.get_data(as_text=True)
