"""What a job says about its entry: the app's ``subject`` (its opaque id for an end user), when the
entry was written or recorded (``occurred_at``) and the app's ``metadata`` (tags and the like).

The same checks serve a JSON body (as validators of ``api.schemas.jobs.JobCreate``), the fields
of a multipart form and the rows of a batch upload, so a value refused in one is refused in all.
Each check raises ``ValueError`` with a message naming no field: the caller knows where the
value came from. Strings the database cannot store are refused earlier (``api.intake.characters``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from api.intake.characters import UnsafeInput, parse_json

MAX_SUBJECT_CHARS = 128
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 256
MAX_METADATA_LIST_ITEMS = 32

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Entry:
    """The entry fields of one submission; ``occurred_at`` None means the submission time."""

    subject: str | None = None
    occurred_at: datetime | None = None
    metadata: dict | None = None

    def columns(self, submitted_at: datetime) -> dict:
        """The job row's columns for these fields; ``occurred_at`` in UTC, as every stored timestamp."""
        occurred_at = self.occurred_at.astimezone(UTC) if self.occurred_at else submitted_at
        return {"subject": self.subject, "occurred_at": occurred_at,
                "entry_metadata": self.metadata}

    def fingerprint(self) -> dict:
        """The fields that were given, as JSON values (for idempotency fingerprints)."""
        given = {"subject": self.subject, "metadata": self.metadata,
                 "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None}
        return {name: value for name, value in given.items() if value is not None}


def check_subject(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not value.strip():
        raise ValueError("must contain non-whitespace characters")
    if len(value) > MAX_SUBJECT_CHARS:
        raise ValueError(f"may be at most {MAX_SUBJECT_CHARS} characters")
    if _CONTROL.search(value):
        raise ValueError("may not contain control characters")
    return value


def parse_occurred_at(value: object) -> datetime:
    """An RFC 3339 timestamp with its offset (``2026-03-08T07:30:00-05:00`` or ``...Z``), as an aware datetime."""
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value.strip()):
        raise ValueError("must be an RFC 3339 timestamp with an offset, such as 2026-03-08T07:30:00-05:00")
    text = value.strip()
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("is not a real date and time") from None


def _check_metadata_string(value: str, where: str, limit: int) -> None:
    if len(value) > limit:
        raise ValueError(f"{where} may be at most {limit} characters")


def check_metadata(value: object) -> dict:
    """At most 16 keys, each mapped to a string or a list of strings, every part bounded in length."""
    if not isinstance(value, dict):
        raise ValueError("must be an object of strings or lists of strings")
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"may have at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError("keys must be non-empty strings")
        _check_metadata_string(key, f"key {key[:20]!r}", MAX_METADATA_KEY_CHARS)
        if isinstance(item, str):
            _check_metadata_string(item, f"`{key}`", MAX_METADATA_VALUE_CHARS)
        elif isinstance(item, list):
            if len(item) > MAX_METADATA_LIST_ITEMS:
                raise ValueError(f"`{key}` may list at most {MAX_METADATA_LIST_ITEMS} strings")
            for part in item:
                if not isinstance(part, str):
                    raise ValueError(f"`{key}` must list strings only")
                _check_metadata_string(part, f"each string of `{key}`", MAX_METADATA_VALUE_CHARS)
        else:
            raise ValueError(f"`{key}` must be a string or a list of strings")
    return value


CHECKS = {"subject": check_subject, "occurred_at": parse_occurred_at, "metadata": check_metadata}


def metadata_text(value: str) -> object:
    """`metadata` given as text (a form field, a CSV cell): a JSON object."""
    try:
        return parse_json(value, ("metadata",))
    except UnsafeInput as error:
        raise ValueError(error.message) from None
    except ValueError:
        raise ValueError("must be a JSON object of strings or lists of strings") from None


def entry_of(fields: dict) -> Entry:
    """The entry fields of a form or an upload row (absent or empty: not given); `metadata` may
    be JSON text.

    Raises ``EntryFieldError`` naming the first refused field.
    """
    checked = {}
    for name, check in CHECKS.items():
        value = fields.get(name)
        if value is None or value == "":
            continue
        try:
            if name == "metadata" and isinstance(value, str):
                value = metadata_text(value)
            checked[name] = check(value)
        except ValueError as error:
            raise EntryFieldError(name, str(error)) from None
    return Entry(**checked)


class EntryFieldError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
