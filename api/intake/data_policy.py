"""A submission's data options resolved against its tenant's policy (``db.tenants.DataPolicy``).

``store_input`` omitted takes the tenant's default, written into the job's options so the worker
that stores the result reads it there (``db.score_only``); ``retention_days`` may not exceed the
tenant's, and becomes the job's ``purge_after`` (``tasks.retention``).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from api.intake.requests import invalid
from db.tenants import DataPolicy


def resolved_options(options: dict, policy: DataPolicy, field_prefix: str = "options") -> dict:
    """``options`` with the tenant's ``store_input`` default; a 422 for a retention over the tenant's."""
    days = options.get("retention_days")
    if days is not None and policy.retention_days is not None and days > policy.retention_days:
        raise invalid(f"{field_prefix}.retention_days",
                      f"at most the tenant's retention, {policy.retention_days} days")
    if "store_input" not in options and not policy.store_input:
        return {**options, "store_input": False}
    return options


def purge_after(options: dict, policy: DataPolicy, submitted_at: datetime) -> datetime | None:
    """When the retention sweep deletes the job: its own retention, else its tenant's; None keeps it."""
    days = options.get("retention_days") or policy.retention_days
    return submitted_at + timedelta(days=days) if days else None
