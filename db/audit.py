"""The audit trail: one row per deletion, erasure and export, written in the transaction that did it.

An event names who acted (the API key, and how it authenticated; or the command line), what
was acted on (ids and the subject's opaque id, never content) and how many rows it touched.
"""
from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.documents import iso_datetime
from db.models import AuditEvent

JOB_DELETED = "job.deleted"
BATCH_DELETED = "batch.deleted"
ERASURE_REQUESTED = "subject.erasure_requested"
SUBJECT_ERASED = "subject.erased"
SUBJECT_EXPORTED = "subject.exported"
#: Who acted when it was the operator's command line.
CLI_ACTOR = {"cli": "python -m api.cli"}


def record(session: Session, tenant_id: uuid.UUID, action: str, actor: dict, target: dict, rows: int) -> AuditEvent:
    event = AuditEvent(tenant_id=tenant_id, action=action, actor=actor, target=target, rows=rows)
    session.add(event)
    return event


def tenant_audit_query(tenant_id: uuid.UUID):
    return select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)


def audit_document(event: AuditEvent) -> dict:
    return {"id": str(event.id), "action": event.action, "actor": event.actor, "target": event.target,
            "rows": event.rows, "created_at": iso_datetime(event.created_at)}
