"""Rows of ``refresh_tokens``: one per refresh JWT issued, so that each is spent once."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from db.models import RefreshToken
from db.session import lock_sqlite_for_writing


def prune_expired(session: Session, api_key_id: uuid.UUID, before: datetime) -> None:
    """Drop the key's rows whose tokens expired before ``before``: they can never be presented again."""
    session.execute(delete(RefreshToken).where(RefreshToken.api_key_id == api_key_id,
                                               RefreshToken.expires_at < before))


def locked_refresh_token(session: Session, jti: str) -> RefreshToken | None:
    """The row, locked until the transaction ends, so two refreshes with one token cannot both succeed.

    SQLite ignores ``FOR UPDATE``: there the database's write lock is taken before the read.
    """
    lock_sqlite_for_writing(session)
    return session.get(RefreshToken, jti, with_for_update=True)


def revoke_live_tokens(session: Session, api_key_id: uuid.UUID, at: datetime) -> None:
    """Revoke every refresh token of the key not yet revoked."""
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.api_key_id == api_key_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )
