"""The shared job and batch documents (webhook payloads, the API) stay what `JobOut` and `BatchOut` describe."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from api.schemas.jobs import BatchOut, JobOut
from db.documents import batch_document, job_document
from db.models import Batch, BatchStatus, Job, JobStatus, utcnow


def finished_job(**overrides) -> Job:
    values = dict(
        id=uuid.uuid4(), tenant_id=uuid.uuid4(), type="emotion", status=JobStatus.SUCCEEDED,
        input={"text": "hi"}, options={}, result={"top_emotion": "joy"}, error_code=None, error_message=None,
        model_name="m", model_version="1", attempts=1, processing_ms=12,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        started_at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
        finished_at=datetime(2026, 1, 2, 3, 4, 7, tzinfo=UTC),
    )
    values.update(overrides)
    return Job(**values)


def test_the_document_is_exactly_what_job_out_serialises():
    for job in (finished_job(), finished_job(status=JobStatus.FAILED, result=None, error_code="invalid_input",
                                             error_message="bad", model_name=None, started_at=None)):
        document = job_document(job)
        assert document.pop("links") == {"self": f"/v1/jobs/{job.id}"}
        assert JobOut.model_validate(document).model_dump(mode="json") == document


def test_naive_sqlite_datetimes_serialise_like_the_api():
    job = finished_job(created_at=datetime(2026, 1, 2, 3, 4, 5))
    document = job_document(job)
    document.pop("links")
    assert JobOut.model_validate(document).model_dump(mode="json")["created_at"] == document["created_at"]


def batch(**overrides) -> Batch:
    values = dict(
        id=uuid.uuid4(), tenant_id=uuid.uuid4(), type="emotion", status=BatchStatus.RUNNING, source_format="csv",
        total_items=4, invalid_items=1, row_errors=[{"row": 3, "code": "empty-text", "message": "Empty."}],
        chunk_size=100, created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        started_at=utcnow() - timedelta(seconds=30), finished_at=None,
    )
    values.update(overrides)
    return Batch(**values)


def test_the_batch_document_is_exactly_what_batch_out_serialises():
    running = {"queued": 1, "running": 1, "succeeded": 1, "failed": 1, "canceled": 0}
    done = {"queued": 0, "running": 0, "succeeded": 3, "failed": 1, "canceled": 0}
    for document in (batch_document(batch(), running),
                     batch_document(batch(status=BatchStatus.COMPLETED, row_errors=[], finished_at=utcnow()), done),
                     batch_document(batch(started_at=None, total_items=0), dict.fromkeys(done, 0))):
        assert BatchOut.model_validate(document).model_dump(mode="json") == document
        assert document["links"]["self"] == f"/v1/batches/{document['id']}"


def test_a_running_batch_estimates_the_time_left():
    document = batch_document(batch(), {"queued": 1, "running": 1, "succeeded": 1, "failed": 1, "canceled": 0})
    assert document["progress"] == 0.5 and 29 <= document["eta_s"] <= 40


def test_the_entry_fields_are_in_the_document_webhooks_send_too():
    job = finished_job(subject="user-42", occurred_at=datetime(2026, 3, 8, 12, 30, tzinfo=UTC),
                       entry_metadata={"tags": ["walk"]})
    document = job_document(job)
    assert (document["subject"], document["occurred_at"], document["metadata"]) == (
        "user-42", "2026-03-08T12:30:00Z", {"tags": ["walk"]})
    document.pop("links")
    assert JobOut.model_validate(document).model_dump(mode="json") == document
