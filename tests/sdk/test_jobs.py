"""``samo.Client`` jobs against the real API with a real emotion worker."""
from __future__ import annotations

import uuid

import pytest

import samo
from config.valence import LABELS


def test_create_wait_get_and_list(sdk):
    subject = f"person-{uuid.uuid4().hex[:8]}"
    job = sdk.jobs.create(text="Thank you so much, this made my day!", subject=subject,
                          occurred_at="2026-11-30T08:00:00Z", metadata={"mood": "good"})
    assert isinstance(job, samo.Job) and job.status in ("queued", "running", "succeeded")
    done = sdk.jobs.wait(job, timeout=120)
    assert done.status == "succeeded" and done.id == job.id
    assert done.emotion.top_emotion in LABELS and set(done.emotion.probabilities) == set(LABELS)
    assert sdk.jobs.get(job.id) == done
    assert done.subject == subject and done.metadata == {"mood": "good"}
    listed = list(sdk.jobs.list(subject=subject))
    assert [found.id for found in listed] == [job.id]


def test_list_follows_every_page_newest_first(sdk):
    ids = [sdk.jobs.create(text=f"Entry number {n}.").id for n in range(3)]
    listed = [job.id for job in sdk.jobs.list(page_size=1)]
    assert listed == ids[::-1]


def test_run_answers_with_the_finished_job(sdk):
    job = sdk.jobs.run(text="I am so proud of what we did.", timeout=120)
    assert job.status == "succeeded" and job.emotion is not None


def test_a_summary_job(sdk):
    job = sdk.jobs.run("summarize", "The sun rose. We walked to the lake. It was cold. We swam anyway.",
                       options={"sentences": 1}, timeout=120)
    assert job.status == "succeeded" and job.result["summary"]


def test_cancel_a_queued_job_and_the_conflict_of_cancelling_again(idle_api, make_tenant):
    tenant = make_tenant()
    with samo.Client(idle_api, tenant.api_key) as sdk:
        job = sdk.jobs.create(text="Waiting for a worker.")
        assert sdk.jobs.cancel(job).status == "canceled"
        with pytest.raises(samo.ConflictError) as raised:
            sdk.jobs.cancel(job.id)
    problem = raised.value
    assert problem.status == 409 and problem.slug == "job-not-cancelable"
    assert problem.title == "Job cannot be canceled" and "canceled" in problem.detail
    assert problem.extensions["status_now"] == "canceled"


def test_problems_are_raised_with_their_fields(sdk, sdk_stack):
    with pytest.raises(samo.UnprocessableError) as invalid:
        sdk.jobs.create(text="hello", options={"top_k": "many"})
    problem = invalid.value
    assert (problem.status, problem.slug, problem.title) == (422, "validation-error", "Invalid request")
    assert "top_k" in problem.detail and any("top_k" in error["field"] for error in problem.errors)
    with pytest.raises(samo.NotFoundError) as missing:
        sdk.jobs.get(str(uuid.uuid4()))
    assert (missing.value.status, missing.value.slug) == (404, "job-not-found")
    assert missing.value.detail and missing.value.type.endswith("job-not-found")
    with samo.Client(sdk_stack.base_url, "samo_0_wrong") as stranger, pytest.raises(samo.AuthenticationError) as denied:
        stranger.jobs.get(str(uuid.uuid4()))
    assert denied.value.status == 401 and denied.value.slug == "invalid-api-key"


def test_a_key_without_the_scope_is_refused(sdk_stack, make_tenant):
    tenant = make_tenant(scopes=["jobs:read"])
    with samo.Client(sdk_stack.base_url, tenant.api_key) as sdk, pytest.raises(samo.PermissionDeniedError) as denied:
        sdk.jobs.create(text="hello")
    assert denied.value.status == 403 and denied.value.extensions["required_scope"] == "jobs:write"


def test_a_token_exchanged_for_the_key_authenticates(sdk_stack, sdk_tenant):
    seen = []
    hooks = {"request": [lambda request: seen.append(request.headers.get("Authorization", ""))]}
    with samo.Client(sdk_stack.base_url, sdk_tenant.api_key, auth="token", event_hooks=hooks) as sdk:
        job = sdk.jobs.run(text="Such a relief.", timeout=120)
        assert sdk.jobs.get(job.id).status == "succeeded"
    assert seen[0] == "" and all(header.startswith("Bearer ") for header in seen[1:])
    assert sdk_tenant.api_key not in "".join(seen)


def test_a_refused_create_is_retried_under_the_same_idempotency_key(sdk_stack, make_tenant, settings):
    """The `burst` tier admits one request per two seconds: the second create is answered 429 with
    Retry-After, and its retry carries the key of its first attempt; two creates make two jobs."""
    from sqlalchemy import func, select

    from db.models import Job
    from db.session import session_scope

    tenant = make_tenant(tier="burst")
    posts = []
    hooks = {"request": [lambda request: posts.append(request.headers["Idempotency-Key"])
                         if request.method == "POST" else None],
             "response": [lambda response: posts.append(response.status_code)
                          if response.request.method == "POST" else None]}
    with samo.Client(sdk_stack.base_url, tenant.api_key, event_hooks=hooks) as sdk:
        first = sdk.jobs.create(text="First entry.")
        second = sdk.jobs.create(text="Second entry.")
    assert first.id != second.id
    keys, statuses = posts[0::2], posts[1::2]
    assert statuses[0] == 202 and 429 in statuses[1:] and statuses[-1] == 202
    assert keys[0] != keys[1] and set(keys[1:]) == {keys[1]}
    with session_scope(settings.database_url) as session:
        stored = session.scalars(select(Job.idempotency_key).where(Job.tenant_id == tenant.tenant_id)).all()
        assert sorted(stored) == sorted({keys[0], keys[1]})
        assert session.scalar(select(func.count()).where(Job.tenant_id == tenant.tenant_id)) == 2


def test_the_same_idempotency_key_answers_with_the_same_job(sdk):
    key = str(uuid.uuid4())
    first = sdk.jobs.create(text="Only once.", idempotency_key=key)
    again = sdk.jobs.create(text="Only once.", idempotency_key=key)
    assert again.id == first.id
    with pytest.raises(samo.ConflictError) as reused:
        sdk.jobs.create(text="Something else.", idempotency_key=key)
    assert reused.value.slug == "idempotency-key-reused"


def test_retries_are_bounded_and_the_429_is_raised(sdk_stack, make_tenant):
    tenant = make_tenant(tier="burst")
    with samo.Client(sdk_stack.base_url, tenant.api_key, max_retries=0) as sdk:
        sdk.jobs.create(text="One.")
        with pytest.raises(samo.RateLimitError) as limited:
            sdk.jobs.create(text="Two.")
    assert limited.value.status == 429 and 0 < limited.value.retry_after <= 2


def test_an_unreachable_api_is_a_connection_error():
    with samo.Client("http://127.0.0.1:1", "samo_0_x", max_retries=1) as sdk, pytest.raises(samo.APIConnectionError):
        sdk.jobs.get(str(uuid.uuid4()))
