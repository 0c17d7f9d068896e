"""Deletion, erasure, export and audit responses, and their paths in `/openapi.json`."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ErasureOut(BaseModel):
    """An erasure of everything stored about one subject, carried out in chunks by a worker."""

    id: str
    subject: str
    status: Literal["queued", "running", "completed"]
    counts: dict[str, int] | None = Field(
        description="Rows removed so far by kind (jobs, scores, deliveries, batches, rollups, shift_events); "
                    "null until the first chunk ran.")
    created_at: str
    finished_at: str | None
    links: dict[str, str]


class AuditEventOut(BaseModel):
    """A deletion, erasure or export: who, what (ids and the subject's id only, never content), when, how many rows."""

    id: str
    action: str = Field(description="job.deleted, batch.deleted, subject.erased or subject.exported.")
    actor: dict[str, str] = Field(description="`api_key_id` and `via` (api_key or jwt), or `cli`.")
    target: dict[str, str]
    rows: int
    created_at: str


class AuditList(BaseModel):
    data: list[AuditEventOut]
    next_cursor: str | None


SUBJECT = {"name": "subject", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
ID = {"in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def deletion(noun: str, parameter: dict) -> dict:
    return {"summary": f"Delete a {noun}: cancel it if it runs, then remove it with everything derived from it "
                       "(scores, media, cache entries, webhook deliveries, its share of the rollups)",
            "parameters": [parameter], "responses": {"204": {"description": "Deleted; it answers 404 from now on"}}}


def privacy_paths(json_content, page: list[dict]) -> dict:
    """The erasure, export and audit paths; the job and batch DELETEs are merged in by `api.views.openapi`."""
    return {
        "/v1/subjects/{subject}": {"delete": {
            "summary": "Erase everything stored about a subject, asynchronously (scope jobs:delete)",
            "description": "Every job, batch item, score, rollup, media file, cache entry and webhook delivery "
                           "of the subject. While an erasure of the subject is pending, another request "
                           "answers that one.",
            "parameters": [SUBJECT],
            "responses": {"202": {"description": "The erasure; poll the Location",
                                  "content": json_content(ErasureOut)}},
        }},
        "/v1/subjects/{subject}/export": {"get": {
            "summary": "Everything stored about a subject, as JSONL (scope subjects:export)",
            "description": "One job document (as GET /v1/jobs/{job_id}) per line, oldest `occurred_at` first; "
                           "recorded in the audit trail.",
            "parameters": [SUBJECT],
            "responses": {"200": {"description": "One JobOut per line",
                                  "content": {"application/x-ndjson": {"schema": {
                                      "$ref": "#/components/schemas/JobOut"}}}}},
        }},
        "/v1/erasures/{erasure_id}": {"get": {
            "summary": "An erasure's progress (scope jobs:delete)", "parameters": [{"name": "erasure_id", **ID}],
            "responses": {"200": {"description": "The erasure", "content": json_content(ErasureOut)}},
        }},
        "/v1/audit": {"get": {
            "summary": "The account's deletions, erasures and exports, newest first (scope audit:read)",
            "parameters": page,
            "responses": {"200": {"description": "A page of audit events", "content": json_content(AuditList)}},
        }},
    }


COMPONENT_MODELS = (ErasureOut, AuditEventOut, AuditList)
