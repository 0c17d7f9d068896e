"""``subject.shift_detected``: after results are stored, each of their subjects is checked once.

The check is the insights comparison (``db.insights``) of the window of
``SAMO_SHIFT_EVENT_WINDOW_DAYS`` ending now against the ``SAMO_SHIFT_EVENT_BASELINE_DAYS`` before
it. When the shift score passes ``SAMO_SHIFT_EVENT_THRESHOLD``, the tenant's endpoints subscribed
to the event get it, at most once per subject and fixed window (``db.shift_events``); the
record and its deliveries commit together, like every other event's outbox. It runs in the
worker that stored the results, after their commit, never in a request, and a failure here
never touches the jobs. Only subjects of tenants with a subscribed endpoint are read.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from db.insights import insights_document, subject_insights
from db.jobs import ClaimedJob
from db.models import utcnow
from db.shift_events import fixed_window_start, listening_tenants, record_shift
from tasks.services import Services
from tasks.webhook_events import emit, publish

log = logging.getLogger(__name__)

SHIFT_EVENT = "subject.shift_detected"


def check_subject(services: Services, tenant_id: uuid.UUID, subject: str) -> list[uuid.UUID]:
    """Stage the event for one subject if its shift passed the threshold in a window not yet reported."""
    settings, now = services.settings, utcnow()
    window = timedelta(days=settings.shift_event_window_days)
    with services.session() as session:
        insights = subject_insights(session, tenant_id, subject, window,
                                    timedelta(days=settings.shift_event_baseline_days), now,
                                    settings.insights_min_entries)
        score = insights.shift_score
        if score is None or score < settings.shift_event_threshold:
            return []
        if not record_shift(session, tenant_id, subject, fixed_window_start(now, window), score):
            return []
        data = {**insights_document(insights), "threshold": settings.shift_event_threshold}
        return emit(settings, session, tenant_id, SHIFT_EVENT, lambda: data)


def check_shifts(services: Services, jobs: list[ClaimedJob]) -> None:
    """Check the subjects of jobs whose results were just stored; best effort, logged on failure.

    Jobs without a subject cost nothing; the others one query for their tenants' endpoints.
    """
    subjects = sorted({(job.tenant_id, job.subject) for job in jobs if job.subject}, key=lambda pair: (str(pair[0]),
                                                                                                   pair[1]))
    if not subjects:
        return
    try:
        with services.session() as session:
            listening = listening_tenants(session, {tenant_id for tenant_id, _ in subjects}, SHIFT_EVENT)
        for tenant_id, subject in subjects:
            if tenant_id in listening:
                publish(services.settings, services.celery, check_subject(services, tenant_id, subject))
    except Exception:  # noqa: BLE001 - the results are stored; a missed check is retried by the next result
        log.warning("could not check %d subjects for shifts", len(subjects), exc_info=True)
