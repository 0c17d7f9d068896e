"""Looking up the caller's own resource by the id in its path."""
from __future__ import annotations

import uuid

from api.auth.principal import current_principal
from api.extensions import db_session
from api.intake.ids import as_uuid
from api.problems import Problem


def tenant_owned(model, raw_id: uuid.UUID | str, noun: str):
    """The caller's row of ``model``; another tenant's row, or a malformed id, answers exactly like
    a missing one (404 ``<noun>-not-found``)."""
    found = as_uuid(raw_id)
    row = db_session().get(model, found) if found else None
    if row is None or row.tenant_id != current_principal().tenant_id:
        raise Problem(404, f"{noun.replace(' ', '-')}-not-found", f"{noun.capitalize()} not found",
                      f"No {noun} {raw_id} for this account.")
    return row
