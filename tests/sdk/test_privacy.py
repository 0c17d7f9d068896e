"""The SDK on deletion, subject erasure and export (``DELETE /v1/jobs/{id}``, ``DELETE /v1/batches/{id}``,
``DELETE /v1/subjects/{subject}``, ``GET /v1/erasures/{id}``, ``GET /v1/subjects/{subject}/export``).

Needs the API of branch `privacy-delete`: run after it is merged.
"""
from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

import samo
from tests.support.scored_entries import Entry, leaning, store_entries


@pytest.fixture
def privileged(sdk_stack, make_tenant):
    """A tenant whose key has every scope, the privacy ones (jobs:delete, subjects:export) too."""
    from db.api_keys import ALL_SCOPES

    tenant = make_tenant(scopes=sorted(ALL_SCOPES))
    with samo.Client(sdk_stack.base_url, tenant.api_key) as sdk:
        yield tenant, sdk


def test_delete_a_job_then_it_is_gone(privileged):
    _tenant, sdk = privileged
    job = sdk.jobs.run(text="Something private.", timeout=120)
    assert sdk.jobs.delete(job) is None
    with pytest.raises(samo.NotFoundError):
        sdk.jobs.get(job)
    with pytest.raises(samo.NotFoundError):
        sdk.jobs.delete(job)


def test_delete_a_batch(privileged):
    _tenant, sdk = privileged
    batch = sdk.batches.upload(["One.", "Two."])
    sdk.batches.delete(batch)
    with pytest.raises(samo.NotFoundError):
        sdk.batches.get(batch)


def test_export_then_erase_a_subject(privileged, settings):
    tenant, sdk = privileged
    subject, start = f"p-{uuid.uuid4().hex[:8]}", datetime(2026, 9, 1, tzinfo=UTC)
    rng = random.Random(3)
    when = [start + timedelta(days=day) for day in (2, 0, 1)]
    entries = [Entry(at, leaning(rng, "joy"), subject) for at in when]
    ids = store_entries(settings.database_url, tenant.tenant_id, entries)
    exported = list(sdk.subjects.export(subject))
    assert [line["id"] for line in exported] == [str(ids[1]), str(ids[2]), str(ids[0])]
    assert all(samo.Job.model_validate(line).subject == subject for line in exported)

    erasure = sdk.subjects.erase(subject)
    assert isinstance(erasure, samo.Erasure) and erasure.subject == subject
    again = sdk.subjects.erase(subject)
    if again.id != erasure.id:
        assert sdk.subjects.erasure(erasure).status == "completed", "a pending erasure is answered again"
    done = erasure.wait(timeout=120)
    assert done.status == "completed" and done.counts["jobs"] == 3
    assert sdk.subjects.erasure(erasure.id).status == "completed"
    assert list(sdk.subjects.export(subject)) == []
    for job_id in ids:
        with pytest.raises(samo.NotFoundError):
            sdk.jobs.get(str(job_id))
