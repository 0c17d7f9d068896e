"""`/v1/erasures/{id}` (an erasure's progress, scope `jobs:delete`) and `/v1/audit` (scope `audit:read`)."""
from __future__ import annotations

import uuid

from flask import Blueprint, request

from api.auth.principal import current_principal, require_scope
from api.extensions import db_session
from api.intake.pagination import newest_first_page, parse_limit
from api.views.owned import tenant_owned
from db.audit import audit_document, tenant_audit_query
from db.erasures import erasure_document
from db.models import AuditEvent, Erasure

bp = Blueprint("privacy", __name__, url_prefix="/v1")


def linked_erasure(erasure: Erasure) -> dict:
    """``db.erasures.erasure_document``, linked from this request's root."""
    document = erasure_document(erasure)
    document["links"]["self"] = request.script_root + document["links"]["self"]
    return document


@bp.get("/erasures/<uuid:erasure_id>")
@require_scope("jobs:delete")
def get_erasure(erasure_id: uuid.UUID | str):
    erasure = tenant_owned(Erasure, erasure_id, "erasure")
    document = linked_erasure(erasure)
    headers = {} if erasure.status == "completed" else {"Retry-After": "1"}
    return document, 200, headers


@bp.get("/audit")
@require_scope("audit:read")
def list_audit_events():
    """Newest first, keyset-paginated on (created_at, id) like `/v1/jobs`."""
    limit = parse_limit(request.args.get("limit"))
    page, next_cursor = newest_first_page(db_session(), tenant_audit_query(current_principal().tenant_id),
                                          AuditEvent, limit, request.args.get("cursor"))
    return {"data": [audit_document(event) for event in page], "next_cursor": next_cursor}
