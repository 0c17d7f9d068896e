"""The column type of every timestamp: aware UTC datetimes in, aware UTC datetimes out.

``DateTime(timezone=True)`` alone answers differently per database: SQLite has no zone to store
and hands back naive datetimes, PostgreSQL hands back aware ones in the session's time zone.
Normalising here, once, lets every caller compare and serialise timestamps without asking which
database it runs on. A naive datetime is refused when bound, since nothing says which zone it
meant; on SQLite it would otherwise be stored as if it were UTC.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator):
    """Stored as ``timestamp with time zone`` (the schema is that of ``DateTime(timezone=True)``)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"a timestamp column takes a datetime, not {type(value).__name__}")
        if value.utcoffset() is None:
            raise ValueError("a timestamp column takes aware datetimes only; give it tzinfo=timezone.utc")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        """SQLite's values carry no zone: they were stored in UTC by :meth:`process_bind_param`."""
        if value is None:
            return None
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
