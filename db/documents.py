"""The JSON documents that describe a job or a batch, shared by the API and by webhook payloads.

A webhook's ``data`` must be exactly what ``GET /v1/jobs/{id}`` answers, and the workers that
build webhook payloads must not import the Flask API, so the document is built here and
``api.views.jobs.job_document`` adds only what needs a request (nothing, today, beyond the link).
``tests/unit/test_job_documents.py`` checks it against ``api.schemas.jobs.JobOut``.
"""
from __future__ import annotations

from datetime import datetime

from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Batch, Job, JobStatus

_datetime_json = TypeAdapter(datetime | None)


def iso_datetime(value: datetime | None) -> str | None:
    """The same text pydantic writes for the API's datetimes (``...Z`` for UTC)."""
    return _datetime_json.dump_python(value, mode="json")


def job_path(job_id) -> str:
    return f"/v1/jobs/{job_id}"


def job_document(job: Job) -> dict:
    has_model = job.model_name is not None
    return {
        "id": str(job.id),
        "type": job.type,
        "status": job.status.value,
        "input": job.input,
        "options": job.options,
        "result": job.result,
        "error": {"code": job.error_code, "message": job.error_message or ""} if job.error_code else None,
        "model": {"name": job.model_name, "version": job.model_version} if has_model else None,
        "created_at": iso_datetime(job.created_at),
        "started_at": iso_datetime(job.started_at),
        "finished_at": iso_datetime(job.finished_at),
        "processing_ms": job.processing_ms,
        "attempts": job.attempts,
        "links": {"self": job_path(job.id)},
    }


def batch_path(batch_id) -> str:
    return f"/v1/batches/{batch_id}"


def batch_document(session: Session, batch: Batch) -> dict:
    """A batch and how many of its items are in each state (read from the items themselves)."""
    counts = dict.fromkeys((status.value for status in JobStatus), 0)
    for status, count in session.execute(
        select(Job.status, func.count()).where(Job.batch_id == batch.id).group_by(Job.status)
    ):
        counts[status.value] = count
    return {
        "id": str(batch.id),
        "type": batch.type,
        "status": batch.status.value,
        "total_items": batch.total_items,
        "invalid_items": batch.invalid_items,
        "counts": counts,
        "created_at": iso_datetime(batch.created_at),
        "started_at": iso_datetime(batch.started_at),
        "finished_at": iso_datetime(batch.finished_at),
        "links": {"self": batch_path(batch.id)},
    }
