"""`GET /v1/subjects/{subject}/correlations` and `GET /v1/analytics/correlations`: labels over-represented in
entries carrying a metadata tag (``db.correlations``), over ``from`` .. ``to`` (default: the last 90 days)."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, request

from api.auth.principal import current_principal, require_scope
from api.extensions import db_session, settings
from api.intake.analytics_query import instant, invalid
from api.views.subjects import path_subject
from db.correlations import correlations
from db.models import utcnow

bp = Blueprint("correlations", __name__, url_prefix="/v1")
DEFAULT_RANGE = timedelta(days=90)
MAX_RANGE = timedelta(days=3 * 366)


def answer(subject: str | None):
    end = instant(request.args, "to", utcnow())
    start = instant(request.args, "from", end - DEFAULT_RANGE)
    if start >= end:
        raise invalid("to", "must be after `from`")
    if end - start > MAX_RANGE:
        raise invalid("to", f"may be at most {MAX_RANGE.days} days after `from`")
    return correlations(db_session(), current_principal().tenant_id, subject, start, end,
                        settings().correlations_min_support)


@bp.get("/subjects/<path:subject>/correlations")
@require_scope("analytics:read")
def subject_correlations(subject: str):
    return answer(path_subject(subject))


@bp.get("/analytics/correlations")
@require_scope("analytics:read")
def tenant_correlations():
    return answer(None)
