"""The shared job document (webhook payloads, the API) stays what `JobOut` describes."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from api.schemas.jobs import JobOut
from db.documents import job_document
from db.models import Job, JobStatus


def finished_job(**overrides) -> Job:
    values = dict(
        id=uuid.uuid4(), tenant_id=uuid.uuid4(), type="emotion", status=JobStatus.SUCCEEDED,
        input={"text": "hi"}, options={}, result={"top_emotion": "joy"}, error_code=None, error_message=None,
        model_name="m", model_version="1", attempts=1, processing_ms=12,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc),
        started_at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc),
        finished_at=datetime(2026, 1, 2, 3, 4, 7, tzinfo=timezone.utc),
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
