"""Where a text is still held: every table's text and JSON columns, the media directory and Redis.

Privacy tests write a sentinel sentence, delete or erase what holds it, then ask
:func:`places_holding` where it is still found; the answer must be empty. Every table of
``Base.metadata`` is read (a new table is swept without changing this file), each text-like
column compared as text. JSON columns are also matched in their escaped form, as a JSON
serialiser may write non-ASCII characters as ``\\uXXXX``. Redis is scanned key by key, every
type read whole; a Celery message body (base64 in kombu's Redis transport) is decoded first.
"""
from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from sqlalchemy import JSON, String, Text, cast, or_, select
from sqlalchemy.orm import Session

from config.settings import Settings
from db.models import Base
from db.session import session_scope


def forms_of(text: str) -> list[str]:
    """The text as stored plainly and as a JSON string body writes it."""
    escaped = json.dumps(text)[1:-1]
    return list(dict.fromkeys([text, escaped]))


def _textual_columns(table) -> list:
    return [column for column in table.columns if isinstance(column.type, (String, Text, JSON))]


def tables_holding(session: Session, text: str) -> list[str]:
    """``table.column`` for each column of each table with a row containing ``text``."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in _textual_columns(table):
            as_text = cast(column, Text)
            matches = or_(*[as_text.contains(form, autoescape=True) for form in forms_of(text)])
            if session.execute(select(table.c[column.name]).where(matches).limit(1)).first() is not None:
                found.append(f"table {table.name}.{column.name}")
    return found


def media_holding(settings: Settings, text: str) -> list[str]:
    root = Path(settings.media_dir)
    if not root.is_dir():
        return []
    needles = [form.encode("utf-8", "surrogatepass") for form in forms_of(text)]
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        content = path.read_bytes()
        if any(needle in content or needle.decode() in path.name for needle in needles):
            found.append(f"media {path.name}")
    return found


def _redis_values(redis, key: bytes) -> list[bytes]:
    kind = redis.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        return [redis.get(key) or b""]
    if kind == "list":
        return redis.lrange(key, 0, -1)
    if kind == "set":
        return list(redis.smembers(key))
    if kind == "zset":
        return [member for member, _ in redis.zrange(key, 0, -1, withscores=True)]
    if kind == "hash":
        return [part for pair in redis.hgetall(key).items() for part in pair]
    if kind == "stream":
        return [part for _, fields in redis.xrange(key) for pair in fields.items() for part in pair]
    return []


def _decoded(value) -> str:
    """A value as text, with a kombu message's base64 body decoded beside it."""
    raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    try:
        message = json.loads(raw)
    except ValueError:
        return raw
    body = message.get("body") if isinstance(message, dict) else None
    if isinstance(body, str):
        try:
            raw += "\n" + base64.b64decode(body, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            pass
    return raw


def redis_holding(redis, text: str) -> list[str]:
    """Keys of ``redis``'s database whose name or value holds ``text``."""
    forms = forms_of(text)
    found = []
    for key in redis.scan_iter(count=500):
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        values = [_decoded(value) for value in _redis_values(redis, key)]
        if any(form in name or any(form in value for value in values) for form in forms):
            found.append(f"redis {name}")
    return found


def places_holding(text: str, settings: Settings, redis) -> list[str]:
    """Every place (table column, media file, Redis key) where ``text`` is still found."""
    with session_scope(settings.database_url) as session:
        found = tables_holding(session, text)
    return found + media_holding(settings, text) + redis_holding(redis, text)
