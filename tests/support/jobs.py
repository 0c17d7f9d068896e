"""Reading job rows as the workers left them."""
from __future__ import annotations

import uuid

from db.models import Job


def stored_job(db_session, job_id) -> Job:
    """The job as committed now: the session's cached copy is expired first."""
    db_session.expire_all()
    return db_session.get(Job, uuid.UUID(str(job_id)))
