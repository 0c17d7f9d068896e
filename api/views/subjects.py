"""`/v1/subjects/{subject}/emotions`: one subject's timeline (scope `analytics:read`).

A subject is the app's own id for an end user, scoped to the account: another account's subject
of the same name is a different one, and a subject without entries answers an empty timeline,
so the answer never tells whether some other account uses that name.
"""
from __future__ import annotations

from flask import Blueprint, request

from api.auth.principal import current_principal, require_scope
from api.extensions import db_session
from api.intake.entries import check_subject
from api.intake.timelines import parse_timeline_query
from api.problems import Problem
from db.timelines import timeline

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
