"""`/v1/batches`: bulk uploads of many texts, their progress, streamed results, items and cancel.

An upload (JSON array or object, JSONL or CSV, as the body or a multipart ``file``) is read
row by row (``api.intake.uploads``); its valid rows become jobs of one batch, inserted a few thousand
per statement in the request's transaction, then published as one `bulk` message per chunk of
``bulk_chunk_size`` items rather than one message per item. Invalid rows are reported by
number and do not fail the valid ones.

Batch items do not count toward the tenant's cap on jobs in flight (a large upload would
never fit it): a tenant may instead have ``batches_in_flight`` batches running at once.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid

from flask import Blueprint, Response, request, stream_with_context, url_for
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from api.auth.principal import current_principal, require_scope
from api.extensions import celery_client, db_session, services, settings
from api.intake.pagination import newest_first_page, parse_limit, parse_row_cursor, parse_status_filter
from api.intake.requests import check_form, form_webhook, idempotency_key, json_body, validation_problem
from api.intake.uploads import (
    ParsedUpload,
    UploadLimits,
    UploadRejected,
    format_of,
    parse_elements,
    parse_stream,
)
from api.metrics import JOBS_SUBMITTED
from api.problems import Problem
from api.schemas.jobs import BatchCreate
from api.schemas.webhooks import BatchWebhook
from api.views.jobs import job_document
from api.views.owned import tenant_owned
from api.views.webhooks import attach_batch_webhook
from db import audit, documents
from db.batches import (
    batch_by_idempotency_key,
    batches_in_flight,
    cancel_batch,
    finished_items,
    insert_items,
    items_page,
    mark_unpublished,
    plan_chunks,
    status_counts,
    status_counts_of,
    tenant_batches_query,
)
from db.deletion import delete_batch
from db.limits import TenantLock, lock_tenant
from db.media import discard_many
from db.models import Batch, BatchStatus, JobStatus
from db.result_cache_keys import forget_jobs
from db.session import session_scope
from tasks.enqueue import enqueue_chunk
from tasks.events import batch_finished

bp = Blueprint("batches", __name__, url_prefix="/v1/batches")

MULTIPART_OVERHEAD_BYTES = 64 * 1024
MULTIPART_FIELDS = {"file", "format", "type", "webhook"}
RESULTS_PAGE_ROWS = 1000
BATCHES_IN_FLIGHT_RETRY_AFTER_S = 30
#: What makes a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: The entry fields come last: a reader of the columns by position before they existed still works.
CSV_COLUMNS = ("row", "id", "job_id", "status", "top_emotion", "confidence", "emotions", "cached",
               "error_code", "error_message", "subject", "occurred_at", "metadata")


def upload_limits() -> UploadLimits:
    return UploadLimits(max_items=settings().batch_max_items, max_text_chars=settings().max_text_chars)


def too_large(limit: int) -> Problem:
    return Problem(413, "payload-too-large", "Upload too large",
                   f"Batch uploads may be at most {limit} bytes ({limit / 2**20:g} MiB).", max_bytes=limit)


def read_upload() -> tuple[ParsedUpload, BatchWebhook | None]:
    """The upload's rows and webhook, whatever its form; refusals become problem documents."""
    limit = settings().batch_max_bytes
    allowed = limit + (MULTIPART_OVERHEAD_BYTES if request.mimetype == "multipart/form-data" else 0)
    if request.content_length is not None and request.content_length > allowed:
        raise too_large(limit)
    request.max_content_length = allowed
    try:
        return parse_upload(upload_limits())
    except UploadRejected as rejected:
        raise Problem(rejected.status, rejected.slug, rejected.title, rejected.detail, **rejected.extensions) from None


def parse_upload(limits: UploadLimits) -> tuple[ParsedUpload, BatchWebhook | None]:
    """JSON (an array, or an object with `items` and maybe `webhook`), multipart, or a raw JSONL/CSV body."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        return parse_multipart(limits), form_webhook(BatchWebhook)
    if request.is_json:
        body, webhook = json_body(), None
        if isinstance(body, dict):
            try:
                created = BatchCreate.model_validate(body)
            except ValidationError as error:
                raise validation_problem(error) from None
            body, webhook = created.items, created.webhook
        return parse_elements(body, limits), webhook
    fmt = format_of(None, None, mimetype)
    if fmt is None:
        raise Problem(415, "unsupported-media-type", "Unsupported Media Type",
                      "Send JSON, JSONL (application/x-ndjson), CSV (text/csv) or multipart/form-data "
                      "with a `file` part.")
    return parse_stream(fmt, request.stream, limits), None


def parse_multipart(limits: UploadLimits) -> ParsedUpload:
    check_form(request.form, request.files)
    unknown = (set(request.form) | set(request.files)) - MULTIPART_FIELDS
    if unknown:
        raise Problem(422, "validation-error", "Invalid request",
                      f"Unknown form fields: {', '.join(sorted(unknown))}; send `file` and optionally `format`.")
    if request.form.get("type", "emotion") != "emotion":
        raise Problem(422, "unknown-job-type", "Unknown job type", "Batches run `emotion` jobs only.")
    upload = request.files.get("file")
    if upload is None:
        raise Problem(422, "missing-file", "Missing file", "Send the items as the multipart part `file`.")
    fmt = format_of(request.form.get("format"), upload.filename, upload.mimetype)
    if fmt is None:
        raise Problem(422, "unknown-format", "Unknown upload format",
                      "Name the file *.jsonl, *.csv or *.json, or send `format` (jsonl, csv or json).")
    return parse_stream(fmt, upload.stream, limits)


def enforce_batches_in_flight(session, principal) -> None:
    """Refuse a batch beyond the tenant's running batches; on PostgreSQL serialised per tenant."""
    lock_tenant(session, principal.tenant_id, TenantLock.BATCH_ADMISSION)
    limit = settings().batches_in_flight
    running = batches_in_flight(session, principal.tenant_id)
    if running >= limit:
        raise Problem(429, "too-many-batches-in-flight", "Too many batches in flight",
                      f"At most {limit} batches may run at once; wait for one to finish.",
                      headers={"Retry-After": str(BATCHES_IN_FLIGHT_RETRY_AFTER_S)}, limit=limit, in_flight=running)


def publish_chunks(session, batch: Batch, chunks: list[list[int]]) -> None:
    celery = celery_client()
    unpublished = [rows for rows in chunks if not enqueue_chunk(celery, batch.id, rows)]
    for rows in unpublished:
        mark_unpublished(session, batch.id, rows)
    if unpublished:
        session.commit()


def batch_document(batch: Batch, counts: dict[str, int]) -> dict:
    """``db.documents.batch_document`` (shared with webhook payloads), linked from this request's root."""
    links = {name: url_for(f"batches.{view}", batch_id=batch.id)
             for name, view in (("self", "get_batch"), ("results", "results"), ("jobs", "batch_jobs"),
                                ("cancel", "cancel"))}
    return documents.batch_document(batch, counts) | {"links": links}


@bp.post("")
@require_scope("batches:write")
def create_batch():
    """An upload; with an ``Idempotency-Key``, a retry of the same upload answers with the batch it started."""
    upload, webhook = read_upload()
    principal = current_principal()
    key = idempotency_key()
    fingerprint = upload_fingerprint(upload, webhook)
    session = db_session()
    if key and (existing := find_batch_by_idempotency_key(principal.tenant_id, key)):
        return replay_or_conflict(existing, fingerprint)
    enforce_batches_in_flight(session, principal)
    batch = Batch(tenant_id=principal.tenant_id, type="emotion", source_format=upload.format,
                  total_items=len(upload.items), invalid_items=upload.invalid,
                  row_errors=[error.as_dict() for error in upload.errors], chunk_size=settings().bulk_chunk_size,
                  options={}, idempotency_key=key, request_hash=fingerprint)
    session.add(batch)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        existing = find_batch_by_idempotency_key(principal.tenant_id, key) if key else None
        if existing is None:
            raise
        return replay_or_conflict(existing, fingerprint)
    attach_batch_webhook(session, batch, webhook)
    insert_items(session, batch, upload.items)
    session.commit()
    publish_chunks(session, batch, plan_chunks(upload.items, batch.chunk_size))
    JOBS_SUBMITTED.labels(type=batch.type).inc(len(upload.items))
    counts = {status.value: 0 for status in JobStatus} | {"queued": len(upload.items)}
    return batch_document(batch, counts), 202, {"Location": url_for("batches.get_batch", batch_id=batch.id)}


def upload_fingerprint(upload: ParsedUpload, webhook: BatchWebhook | None) -> str:
    """What the upload asks for, independent of its encoding (a multipart boundary, JSON spacing)."""
    canonical = json.dumps({
        "format": upload.format,
        "items": [[item.row, item.text, item.client_id, *entry_fingerprint(item)] for item in upload.items],
        "errors": [error.as_dict() for error in upload.errors],
        "invalid": upload.invalid,
        "webhook": webhook.model_dump(mode="json") if webhook is not None else None,
    }, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def entry_fingerprint(item) -> list:
    """An item's entry fields, when it has any (an upload without them fingerprints as it did before them)."""
    if item.subject is None and item.occurred_at is None and item.metadata is None:
        return []
    return [item.subject, documents.iso_datetime(item.occurred_at), item.metadata]


def find_batch_by_idempotency_key(tenant_id: uuid.UUID, key: str) -> Batch | None:
    return batch_by_idempotency_key(db_session(), tenant_id, key)


def replay_or_conflict(existing: Batch, fingerprint: str):
    if existing.request_hash != fingerprint:
        raise Problem(409, "idempotency-key-reused", "Idempotency-Key reused",
                      "This Idempotency-Key was already used with a different upload.")
    return batch_document(existing, status_counts(db_session(), existing.id)), 202, {
        "Location": url_for("batches.get_batch", batch_id=existing.id), "Idempotent-Replayed": "true"}


def tenant_batch(batch_id: uuid.UUID | str) -> Batch:
    return tenant_owned(Batch, batch_id, "batch")


@bp.get("/<uuid:batch_id>")
@require_scope("batches:read")
def get_batch(batch_id: uuid.UUID | str):
    batch = tenant_batch(batch_id)
    headers = {"Retry-After": "2"} if batch.status == BatchStatus.RUNNING else {}
    return batch_document(batch, status_counts(db_session(), batch.id)), 200, headers


@bp.post("/<uuid:batch_id>/cancel")
@require_scope("batches:write")
def cancel(batch_id: uuid.UUID | str):
    batch = tenant_batch(batch_id)
    session = db_session()
    if not cancel_batch(session, batch.id):
        raise Problem(409, "batch-not-cancelable", "Batch cannot be canceled",
                      f"The batch has already ended with status {batch.status.value}.", status_now=batch.status.value)
    session.commit()
    batch_finished(services(), batch.id, "canceled")
    session.refresh(batch)
    return batch_document(batch, status_counts(session, batch.id)), 200


@bp.delete("/<uuid:batch_id>")
@require_scope("jobs:delete")
def delete(batch_id: uuid.UUID | str):
    """Cancel the batch if it still runs, then remove it, its items and what derives from them, in one transaction."""
    batch = tenant_batch(batch_id)
    session = db_session()
    cancel_batch(session, batch.id)
    removed = delete_batch(session, batch)
    audit.record(session, batch.tenant_id, audit.BATCH_DELETED, current_principal().actor,
                 {"batch_id": str(batch.id)}, removed.rows)
    forget_jobs(services().redis, removed.job_ids)
    session.commit()
    discard_many(settings(), removed.audio_job_ids)
    return "", 204


@bp.get("")
@require_scope("batches:read")
def list_batches():
    """Newest first, keyset-paginated on (created_at, id) like `/v1/jobs`."""
    limit = parse_limit(request.args.get("limit"))
    query = tenant_batches_query(current_principal().tenant_id,
                                 parse_status_filter(request.args.get("status"), BatchStatus))
    session = db_session()
    page, next_cursor = newest_first_page(session, query, Batch, limit, request.args.get("cursor"))
    counts = status_counts_of(session, [batch.id for batch in page])
    return {"data": [batch_document(batch, counts[batch.id]) for batch in page], "next_cursor": next_cursor}


@bp.get("/<uuid:batch_id>/jobs")
@require_scope("batches:read")
def batch_jobs(batch_id: uuid.UUID | str):
    """The batch's items as jobs, in row order; ``cursor`` is the last row of the previous page."""
    batch = tenant_batch(batch_id)
    limit = parse_limit(request.args.get("limit"))
    jobs = items_page(db_session(), batch.id, parse_row_cursor(request.args.get("cursor")), limit + 1)
    page, more = jobs[:limit], len(jobs) > limit
    data = [job_document(job) | {"batch_id": str(batch.id), "row": job.batch_item, "client_id": job.client_id}
            for job in page]
    return {"data": data, "next_cursor": str(page[-1].batch_item) if more else None}


def results_format() -> str:
    fmt = (request.args.get("format") or "").lower()
    if fmt in ("jsonl", "csv"):
        return fmt
    if fmt:
        raise Problem(400, "invalid-format", "Invalid format", "`format` must be jsonl or csv.")
    best = request.accept_mimetypes.best_match(["application/x-ndjson", "application/jsonl", "text/csv"])
    return "csv" if best == "text/csv" else "jsonl"


def result_record(row) -> dict:
    record = {"row": row.batch_item, "id": row.client_id, "job_id": str(row.id),
              "status": JobStatus(row.status).value, "subject": row.subject,
              "occurred_at": documents.iso_datetime(row.occurred_at), "metadata": row.entry_metadata}
    if row.result is not None:
        record["result"] = row.result
    if row.error_code:
        record["error"] = {"code": row.error_code, "message": row.error_message or ""}
    return record


def spreadsheet_safe(cell: object) -> object:
    """A text cell that a spreadsheet would run as a formula, quoted as OWASP recommends (a leading ``'``).

    Client ids and error messages are written as given, and ``=HYPERLINK(...)`` or ``@SUM(...)``
    in a results file would execute when the file is opened.
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def csv_line(record: dict) -> list:
    result = record.get("result") or {}
    error = record.get("error") or {}
    metadata = json.dumps(record["metadata"], ensure_ascii=False, separators=(",", ":")) if record["metadata"] else ""
    cells = [record["row"], record["id"] or "", record["job_id"], record["status"], result.get("top_emotion", ""),
             result.get("confidence", ""), ";".join(result.get("emotions", [])),
             "" if not result else str(bool(result.get("cached"))).lower(), error.get("code", ""),
             error.get("message", ""), record["subject"] or "", record["occurred_at"] or "", metadata]
    return [spreadsheet_safe(cell) for cell in cells]


@bp.get("/<uuid:batch_id>/results")
@require_scope("batches:read")
def results(batch_id: uuid.UUID | str):
    """Finished items in row order, JSONL or CSV, streamed page by page; partial while the batch runs."""
    batch = tenant_batch(batch_id)
    fmt = results_format()
    database_url = settings().database_url

    def pages():
        """Each page in a short transaction of its own: the stream may outlive the request's session."""
        after = 0
        while True:
            with session_scope(database_url) as session:
                rows = finished_items(session, batch_id, after, RESULTS_PAGE_ROWS)
            if not rows:
                return
            after = rows[-1].batch_item
            yield [result_record(row) for row in rows]

    def jsonl():
        for page in pages():
            yield "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in page)

    def csv_text():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        yield buffer.getvalue()
        for page in pages():
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(csv_line(record) for record in page)
            yield buffer.getvalue()

    body, mimetype = (csv_text(), "text/csv") if fmt == "csv" else (jsonl(), "application/x-ndjson")
    headers = {"X-Batch-Status": batch.status.value,
               "Content-Disposition": f'inline; filename="batch-{batch_id}.{fmt}"'}
    return Response(stream_with_context(body), mimetype=mimetype, headers=headers)
