"""`GET /v1/subjects/{subject}/insights`: a subject's recent window against its own baseline.

Read from the rollups only (``db.insights``); these are descriptive statistics of the model's
outputs for the subject's entries, never an assessment of the person.
"""
from __future__ import annotations

from flask import Blueprint, request

from api.auth.principal import current_principal, require_scope
from api.extensions import db_session, settings
from api.intake.analytics_query import MAX_BASELINE, MAX_WINDOW, duration, instant
from api.views.subjects import path_subject
from db.insights import insights_document, subject_insights
from db.models import utcnow

bp = Blueprint("insights", __name__, url_prefix="/v1/subjects")


@bp.get("/<path:subject>/insights")
@require_scope("analytics:read")
def get_insights(subject: str):
    """``window`` (default 7d) ending at ``end`` (default now) against the ``baseline`` (default 30d) before it."""
    subject = path_subject(subject)
    window = duration(request.args, "window", "7d", MAX_WINDOW)
    baseline = duration(request.args, "baseline", "30d", MAX_BASELINE)
    end = instant(request.args, "end", utcnow())
    insights = subject_insights(db_session(), current_principal().tenant_id, subject, window, baseline, end,
                                settings().insights_min_entries)
    return insights_document(insights)
