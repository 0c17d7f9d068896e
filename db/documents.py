"""The JSON documents that describe a job or a batch, shared by the API and by webhook payloads.

A webhook's ``data`` must be exactly what ``GET /v1/jobs/{id}`` or ``GET /v1/batches/{id}``
answers, and the workers that build webhook payloads must not import the Flask API, so each
document is built here, once; ``api.views.jobs.job_document`` and ``api.views.batches.batch_document``
replace only the links, with ones under the request's root. ``tests/unit/test_job_documents.py``
checks them against ``api.schemas.jobs.JobOut`` and ``BatchOut``.
"""
from __future__ import annotations

from datetime import datetime

from pydantic import TypeAdapter

from db.models import Batch, BatchStatus, Job, utcnow

_datetime_json = TypeAdapter(datetime | None)


def iso_datetime(value: datetime | None) -> str | None:
    """The text pydantic writes for the API's datetimes: ``...Z``, as every stored timestamp is UTC."""
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
        "subject": job.subject,
        "occurred_at": iso_datetime(job.occurred_at),
        "metadata": job.entry_metadata,
        "links": {"self": job_path(job.id)},
    }


def batch_path(batch_id) -> str:
    return f"/v1/batches/{batch_id}"


def batch_links(batch_id) -> dict[str, str]:
    path = batch_path(batch_id)
    return {"self": path, "results": f"{path}/results", "jobs": f"{path}/jobs", "cancel": f"{path}/cancel"}


def eta_seconds(batch: Batch, counts: dict[str, int]) -> float | None:
    """Items left over the rate items have been finishing at since the batch's first chunk began."""
    done = counts["succeeded"] + counts["failed"]
    left = counts["queued"] + counts["running"]
    if batch.status != BatchStatus.RUNNING or batch.started_at is None or done == 0:
        return None
    elapsed = (utcnow() - batch.started_at).total_seconds()
    return round(left * elapsed / done, 1) if elapsed > 0 else None


def batch_document(batch: Batch, counts: dict[str, int]) -> dict:
    """A batch with ``counts``, its items by status (``db.batches.status_counts``, every status present)."""
    finished = counts["succeeded"] + counts["failed"] + counts["canceled"]
    return {
        "id": str(batch.id),
        "type": batch.type,
        "status": batch.status.value,
        "format": batch.source_format,
        "total_items": batch.total_items,
        "invalid_items": batch.invalid_items,
        "counts": dict(counts),
        "progress": round(finished / batch.total_items, 4) if batch.total_items else 1.0,
        "eta_s": eta_seconds(batch, counts),
        "errors": batch.row_errors or [],
        "created_at": iso_datetime(batch.created_at),
        "started_at": iso_datetime(batch.started_at),
        "finished_at": iso_datetime(batch.finished_at),
        "links": batch_links(batch.id),
    }


def batch_progress(batch: Batch, counts: dict[str, int]) -> dict:
    """A batch's live ``progress`` event (``tasks.live_events``): its state, without its links and errors."""
    document = batch_document(batch, counts)
    return {"batch_id": document["id"], "status": document["status"], "counts": document["counts"],
            "progress": document["progress"], "eta_s": document["eta_s"]}
