"""`/v1/analytics/emotions`: the account's timeline over every entry (scope `analytics:read`)."""
from __future__ import annotations

from flask import Blueprint, request

from api.auth.principal import current_principal, require_scope
from api.extensions import db_session
from api.intake.timelines import parse_timeline_query
from db.timelines import timeline

bp = Blueprint("analytics", __name__, url_prefix="/v1/analytics")


@bp.get("/emotions")
@require_scope("analytics:read")
def tenant_emotions():
    """As a subject's timeline, over all the account's entries, with the distinct subjects of each bucket."""
    query = parse_timeline_query(request.args)
    buckets = timeline(db_session(), current_principal().tenant_id, None, query.start, query.end, query.unit,
                       query.zone)
    return {**query.echo(), "buckets": buckets}
