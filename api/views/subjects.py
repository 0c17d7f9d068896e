"""`/v1/subjects/{subject}`: one subject's timeline (scope `analytics:read`), its erasure (scope
`jobs:delete`) and its export (scope `subjects:export`).

A subject is the app's own id for an end user, scoped to the account: another account's subject
of the same name is a different one, and a subject without entries answers an empty timeline,
so the answer never tells whether some other account uses that name.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, request, stream_with_context

from api.auth.principal import current_principal, require_scope
from api.extensions import celery_client, db_session, settings
from api.intake.entries import check_subject
from api.intake.timelines import parse_timeline_query
from api.problems import Problem
from api.views.privacy import linked_erasure
from db import audit, documents
from db.erasures import QUEUED, request_erasure
from db.exports import count_subject_jobs, subject_jobs
from db.session import session_scope
from db.timelines import timeline
from tasks.enqueue import enqueue_erasure

bp = Blueprint("subjects", __name__, url_prefix="/v1/subjects")


def path_subject(raw: str) -> str:
    try:
        return check_subject(raw)
    except ValueError as error:
        raise Problem(422, "invalid-subject", "Invalid subject", f"The subject {error}.",
                      errors=[{"field": "subject", "message": str(error)}]) from None


@bp.get("/<path:subject>/emotions")
@require_scope("analytics:read")
def subject_emotions(subject: str):
    """Per bucket: entries, mean probability and share over threshold of each label, top labels, valence split."""
    subject = path_subject(subject)
    query = parse_timeline_query(request.args)
    buckets = timeline(db_session(), current_principal().tenant_id, subject, query.start, query.end, query.unit,
                       query.zone)
    return {"subject": subject, **query.echo(), "buckets": buckets}


@bp.delete("/<path:subject>")
@require_scope("jobs:delete")
def erase(subject: str):
    """Erase everything stored about the subject, asynchronously: 202 with the erasure to poll.

    While one erasure of the subject is pending, another request answers that one.
    """
    subject = path_subject(subject)
    session = db_session()
    principal = current_principal()
    erasure, _ = request_erasure(session, principal.tenant_id, subject, principal.actor)
    session.commit()
    if erasure.status == QUEUED:
        enqueue_erasure(celery_client(), erasure.id)
    document = linked_erasure(erasure)
    return document, 202, {"Location": document["links"]["self"]}


@bp.get("/<path:subject>/export")
@require_scope("subjects:export")
def export(subject: str):
    """Every job of the subject as JSONL (one job document per line), oldest entry first, streamed.

    The export is recorded in the audit trail before the first line is sent.
    """
    subject = path_subject(subject)
    session = db_session()
    tenant_id = current_principal().tenant_id
    rows = count_subject_jobs(session, tenant_id, subject)
    audit.record(session, tenant_id, audit.SUBJECT_EXPORTED, current_principal().actor, {"subject": subject}, rows)
    session.commit()
    root = request.script_root
    database_url = settings().database_url

    def lines():
        with session_scope(database_url) as reading:
            for job in subject_jobs(reading, tenant_id, subject):
                document = documents.job_document(job)
                document["links"] = {"self": root + document["links"]["self"]}
                yield json.dumps(document, separators=(",", ":")) + "\n"

    return Response(stream_with_context(lines()), mimetype="application/x-ndjson")
