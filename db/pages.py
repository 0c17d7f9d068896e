"""Keyset pages, newest first on (created_at, id): a page after the last row seen stays stable as rows arrive."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session


def newest_first(session: Session, query: Select, model, limit: int,
                 after: tuple[datetime, uuid.UUID] | None = None) -> list:
    """Up to ``limit + 1`` rows of ``model`` older than ``after`` (created_at, id); the extra row
    says a next page exists."""
    if after is not None:
        created_at, last_id = after
        query = query.where(or_(model.created_at < created_at,
                                and_(model.created_at == created_at, model.id < last_id)))
    return list(session.scalars(query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)))
