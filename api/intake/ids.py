"""Resource ids in URL paths: every segment where a UUID is expected reaches its view.

Werkzeug's ``uuid`` converter lets a malformed id fall through to the router's generic 404, so
``/v1/jobs/not-a-job`` would not answer `job-not-found` as a well-formed id of no job does.
:class:`ResourceIdConverter` is registered under the same name (rules, and the metric labels
made from them, stay ``<uuid:job_id>``): it matches any segment and hands the view a
:class:`uuid.UUID`, or for anything else a :class:`MalformedId`, which names no row. Views
look ids up through :func:`as_uuid` (``api.views.owned.tenant_owned``).
"""
from __future__ import annotations

import re
import uuid

from werkzeug.routing import UUIDConverter

_CANONICAL = re.compile(UUIDConverter.regex)


class MalformedId(str):
    """A path segment that is not a UUID; no resource has it."""


class ResourceIdConverter(UUIDConverter):
    regex = "[^/]+"

    def to_python(self, value: str) -> uuid.UUID | MalformedId:
        return uuid.UUID(value) if _CANONICAL.fullmatch(value) else MalformedId(value)


def as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    """The id to look up, or None for a malformed one (answered like a missing resource)."""
    return value if isinstance(value, uuid.UUID) else None
