"""`/v1/jobs`: submit, read, list, cancel and delete analysis jobs."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

from flask import Blueprint, request
from sqlalchemy.exc import IntegrityError

from api.auth.principal import current_principal, require_scope
from api.auth.ratelimit import Admission, admits_jobs, enforce_jobs_in_flight, release_admission
from api.extensions import (
    celery_client,
    db_session,
    end_request_transaction,
    job_writer,
    redis_client,
    services,
    settings,
)
from api.fastpath.waiting import respond_when_finished
from api.intake.audio import allow_large_uploads
from api.intake.entries import check_subject, parse_occurred_at
from api.intake.pagination import newest_first_page, parse_limit, parse_status_filter
from api.intake.requests import idempotency_key
from api.intake.submissions import Submission, read_submission, release_submission
from api.metrics import record_job_submitted
from api.problems import Problem
from api.views.owned import tenant_owned
from api.views.webhooks import attach_job_webhook
from config import tracing
from config.job_types import audio_types, job_type
from db import audit, documents
from db.deletion import delete_jobs
from db.jobs import cancel_job, job_by_idempotency_key, mark_unpublished, tenant_jobs_query
from db.media import discard, discard_many
from db.models import Job, JobStatus, utcnow
from db.result_cache_keys import forget_jobs
from tasks.enqueue import enqueue_job, text_chars
from tasks.events import job_finished
from tasks.live_events import publish_statuses
from tasks.webhook_events import stage_job_events

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
bp.before_request(allow_large_uploads)
bp.teardown_request(release_submission)


def job_link(job_id: uuid.UUID) -> str:
    """The job's URL path as this request reaches the API (under its script root, if mounted)."""
    return request.script_root + documents.job_path(job_id)


def job_document(job: Job) -> dict:
    """``db.documents.job_document`` (shared with webhook payloads), linked from this request's root."""
    document = documents.job_document(job)
    document["links"] = {"self": job_link(job.id)}
    return document


def replay_or_conflict(existing: Job, fingerprint: str):
    if existing.request_hash != fingerprint:
        raise Problem(409, "idempotency-key-reused", "Idempotency-Key reused",
                      "This Idempotency-Key was already used with a different request body.")
    return accepted(existing, replayed=True)


def accepted(job: Job, replayed: bool = False):
    document = job_document(job)
    headers = {"Location": document["links"]["self"]}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return document, 202, headers


def find_by_idempotency_key(tenant_id: uuid.UUID, key: str) -> Job | None:
    return job_by_idempotency_key(db_session(), tenant_id, key)


@bp.post("")
@admits_jobs
@require_scope("jobs:write")
def create_job():
    """JSON for text jobs, multipart/form-data for audio ones (see api/intake/submissions.py).

    A job that is only its row (most are) goes through the process's group-commit writer and
    never opens a session of the request's own, unless the fast path is switched off
    (``SAMO_GROUP_COMMIT``, ``api.fastpath``).
    """
    submission = read_submission()
    principal = current_principal()
    key = idempotency_key()
    fingerprint = submission.fingerprint
    if key and (existing := find_by_idempotency_key(principal.tenant_id, key)):
        return replay_or_conflict(existing, fingerprint)

    admission = enforce_jobs_in_flight(db_session, principal)
    row = new_job_row(submission, principal.tenant_id, key)
    tracing.set_job_attributes([row["id"]], [principal.tenant_id])
    # Before the row is written: a worker's `running` can then never come first.
    publish_statuses(redis_client(), settings(), [row["id"]], JobStatus.QUEUED.value)
    try:
        if takes_group_commit(submission, admission):
            end_request_transaction()  # an idempotency lookup's; the writer has its own connection
            job_writer().write(row)
            job = SimpleNamespace(**row)
        else:
            job = Job(**row)
            store_in_request(db_session(), job, submission)
    except IntegrityError:
        end_request_transaction()
        existing = find_by_idempotency_key(principal.tenant_id, key) if key else None
        if existing is None:
            raise
        return replay_or_conflict(existing, fingerprint)
    finally:
        release_admission()
    record_job_submitted(submission.type)
    return respond_when_finished(job, accepted)


def new_job_row(submission: Submission, tenant_id: uuid.UUID, key: str | None) -> dict:
    """Every column of a new job, as the group-commit writer inserts it; ``Job(**row)`` for the ORM.

    Written out, not read off a transient ``Job``: building the ORM instance and reading its
    columns back is work the fast path exists to skip.
    """
    now = utcnow()
    return {
        "id": submission.job_id, "tenant_id": tenant_id, "batch_id": None, "batch_item": None, "client_id": None,
        "type": submission.type, "status": JobStatus.QUEUED, "queue": job_type(submission.type).queue_name(settings()),
        "input": submission.input, "options": submission.options, "result": None, "error_code": None,
        "error_message": None, "model_name": None, "model_version": None, "created_at": now, "enqueued_at": now,
        "started_at": None, "finished_at": None, "processing_ms": None, "attempts": 0, "idempotency_key": key,
        "request_hash": submission.fingerprint, **submission.entry.columns(now),
    }


def writes_only_the_job(submission: Submission) -> bool:
    """No uploaded file to place and no webhook subscription to store beside the row."""
    return submission.upload is None and submission.webhook is None


def takes_group_commit(submission: Submission, admission: Admission) -> bool:
    """The fast path is on, the row is all there is to write, and no admission lock must be held
    until the row commits (a count near the cap takes it in the request's transaction)."""
    return settings().group_commit and writes_only_the_job(submission) and not admission.locked


def store_in_request(session, job: Job, submission: Submission) -> None:
    """The job with what it brings (a placed upload, a webhook subscription) in the request's transaction."""
    submission.place_media()
    attach_job_webhook(session, job, submission.webhook)
    session.add(job)
    session.commit()
    submission.committed()
    if not enqueue_job(celery_client(), job.id, job.type, text_chars(job.input)):
        mark_unpublished(session, job.id)
        session.commit()


def batch_filter(raw: str | None) -> dict:
    """``batch=<id>``: the items of that batch; ``batch=none``: interactive jobs only."""
    if raw is None:
        return {}
    if raw.strip().lower() == "none":
        return {"interactive_only": True}
    try:
        return {"batch_id": uuid.UUID(raw.strip())}
    except ValueError:
        raise Problem(400, "invalid-batch-filter", "Invalid batch filter",
                      "`batch` must be a batch id or `none`.") from None


def entry_filters(args) -> dict:
    """``subject``, ``occurred_after`` (inclusive) and ``occurred_before`` (exclusive) of a job list."""
    filters = {}
    for name, check in (("subject", check_subject), ("occurred_after", parse_occurred_at),
                        ("occurred_before", parse_occurred_at)):
        raw = args.get(name)
        if raw is None:
            continue
        try:
            filters[name] = check(raw)
        except ValueError as error:
            raise Problem(400, "invalid-entry-filter", "Invalid entry filter", f"`{name}` {error}.",
                          errors=[{"field": name, "message": str(error)}]) from None
    return filters


def tenant_job(job_id: uuid.UUID | str) -> Job:
    return tenant_owned(Job, job_id, "job")


@bp.get("/<uuid:job_id>")
@require_scope("jobs:read")
def get_job(job_id: uuid.UUID | str):
    job = tenant_job(job_id)
    headers = {} if job.status.is_terminal else {"Retry-After": "1"}
    return job_document(job), 200, headers


@bp.post("/<uuid:job_id>/cancel")
@require_scope("jobs:write")
def cancel(job_id: uuid.UUID | str):
    job = tenant_job(job_id)
    session = db_session()
    if not cancel_job(session, job.id):
        raise Problem(409, "job-not-cancelable", "Job cannot be canceled",
                      f"The job has already finished with status {job.status.value}.", status_now=job.status.value)
    deliveries = stage_job_events(settings(), session, [job.id], JobStatus.CANCELED.value)
    session.commit()
    job_finished(services(), job.id, JobStatus.CANCELED.value, deliveries)  # `Prefer: wait` callers, webhooks
    if job.type in audio_types():
        discard(settings(), job.id)
    session.refresh(job)
    return job_document(job), 200


@bp.delete("/<uuid:job_id>")
@require_scope("jobs:delete")
def delete(job_id: uuid.UUID | str):
    """Cancel the job if it still runs, then remove it and everything derived from it (``db.deletion``)."""
    job = tenant_job(job_id)
    session = db_session()
    removed = delete_jobs(session, job.tenant_id, [job.id])
    audit.record(session, job.tenant_id, audit.JOB_DELETED, current_principal().actor, {"job_id": str(job.id)},
                 removed.rows)
    forget_jobs(services().redis, removed.job_ids)
    session.commit()
    discard_many(settings(), removed.audio_job_ids)
    return "", 204


@bp.get("")
@require_scope("jobs:read")
def list_jobs():
    limit = parse_limit(request.args.get("limit"))
    query = tenant_jobs_query(current_principal().tenant_id,
                              parse_status_filter(request.args.get("status"), JobStatus),
                              request.args.get("type") or None, **batch_filter(request.args.get("batch")),
                              **entry_filters(request.args))
    page, next_cursor = newest_first_page(db_session(), query, Job, limit, request.args.get("cursor"))
    return {"data": [job_document(job) for job in page], "next_cursor": next_cursor}
