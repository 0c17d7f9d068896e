"""Webhook request and response schemas, and the OpenAPI paths of `/v1/webhooks`."""
from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

JobEventType = Literal["job.succeeded", "job.failed", "job.canceled"]
EventType = Literal["job.succeeded", "job.failed", "job.canceled", "batch.completed", "batch.progress",
                    "subject.shift_detected"]
DeliveryStatus = Literal["pending", "succeeded", "failed", "dead"]
URL_FIELD = Field(min_length=1, max_length=2048,
                  description="http or https; it must resolve to public addresses only.")


class JobWebhook(BaseModel):
    """`webhook` of a job submission: called when this job ends, signed with the account's signing secret
    (`GET /v1/webhooks/signing-secret`)."""

    model_config = ConfigDict(extra="forbid")

    url: str = URL_FIELD
    events: list[JobEventType] = Field(default_factory=lambda: ["job.succeeded", "job.failed"], min_length=1)


class BatchWebhook(BaseModel):
    """`webhook` of a batch submission."""

    model_config = ConfigDict(extra="forbid")

    url: str = URL_FIELD
    events: list[Literal["batch.completed", "batch.progress"]] = Field(
        default_factory=lambda: ["batch.completed"], min_length=1)


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = URL_FIELD
    events: list[EventType] = Field(
        default_factory=lambda: ["job.succeeded", "job.failed", "batch.completed"], min_length=1)
    description: str = Field(default="", max_length=500)


class EndpointUpdate(BaseModel):
    """Fields to change; `enabled: true` re-enables a disabled endpoint and clears its failure count."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: list[EventType] | None = Field(default=None, min_length=1)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: UUID
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    consecutive_failures: int
    created_at: datetime
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then messages carry a second signature made with the previous secret.")
    secret: str | None = Field(default=None, description="Only in the answer that created it (or rotated it).")


class EndpointList(BaseModel):
    data: list[EndpointOut]


class SigningSecretOut(BaseModel):
    """The account's secret for webhooks given with a job or batch submission."""

    secret: str
    rotated_at: datetime | None
    previous_secret_expires_at: datetime | None


class AttemptOut(BaseModel):
    number: int
    attempted_at: datetime
    url: str
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_excerpt: str | None


class DeliveryOut(BaseModel):
    id: UUID
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    event_type: str
    status: DeliveryStatus
    endpoint_id: UUID | None
    job_id: UUID | None
    batch_id: UUID | None
    url: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: list[AttemptOut]
    payload: dict


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None


COMPONENT_MODELS = (JobWebhook, EndpointCreate, EndpointUpdate, EndpointOut, EndpointList, SigningSecretOut,
                    DeliveryOut, DeliveryList)


def _json(model: type[BaseModel]) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}


def _ok(status: int, description: str, model: type[BaseModel] | None = None) -> dict:
    """The success response; ``api.views.openapi`` adds the problem responses every operation can answer."""
    return {str(status): {"description": description, **({"content": _json(model)} if model else {})}}


def _path_id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def webhook_paths() -> dict:
    endpoint_id, delivery_id = _path_id("endpoint_id"), _path_id("delivery_id")
    page = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            {"name": "status", "in": "query", "schema": {"type": "string"}}]
    return {
        "/v1/webhooks/endpoints": {
            "post": {"summary": "Register a webhook endpoint (its secret is shown once)",
                     "requestBody": {"required": True, "content": _json(EndpointCreate)},
                     "responses": _ok(201, "Created, with `secret`", EndpointOut)},
            "get": {"summary": "List webhook endpoints", "responses": _ok(200, "Endpoints", EndpointList)},
        },
        "/v1/webhooks/endpoints/{endpoint_id}": {
            "get": {"summary": "Get an endpoint", "parameters": [endpoint_id],
                    "responses": _ok(200, "The endpoint", EndpointOut)},
            "patch": {"summary": "Change or re-enable an endpoint", "parameters": [endpoint_id],
                      "requestBody": {"required": True, "content": _json(EndpointUpdate)},
                      "responses": _ok(200, "The endpoint", EndpointOut)},
            "delete": {"summary": "Delete an endpoint and its deliveries", "parameters": [endpoint_id],
                       "responses": _ok(204, "Deleted")},
        },
        "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret": {
            "post": {"summary": "New secret (shown once); the old one keeps signing during the overlap",
                     "parameters": [endpoint_id], "responses": _ok(200, "With the new `secret`", EndpointOut)},
        },
        "/v1/webhooks/endpoints/{endpoint_id}/deliveries": {
            "get": {"summary": "Deliveries to an endpoint with their attempts, newest first",
                    "parameters": [endpoint_id, *page], "responses": _ok(200, "A page", DeliveryList)},
        },
        "/v1/webhooks/deliveries": {
            "get": {"summary": "All deliveries (filter by `job_id`, `endpoint_id`, `status`)",
                    "parameters": [*page, {"name": "job_id", "in": "query", "schema": {"type": "string"}},
                                   {"name": "endpoint_id", "in": "query", "schema": {"type": "string"}}],
                    "responses": _ok(200, "A page", DeliveryList)},
        },
        "/v1/webhooks/deliveries/{delivery_id}": {
            "get": {"summary": "One delivery with its attempts", "parameters": [delivery_id],
                    "responses": _ok(200, "The delivery", DeliveryOut)},
        },
        "/v1/webhooks/deliveries/{delivery_id}/redeliver": {
            "post": {"summary": "Send again now, same `webhook-id`, fresh retry schedule", "parameters": [delivery_id],
                     "responses": _ok(202, "Scheduled", DeliveryOut)},
        },
        "/v1/webhooks/signing-secret": {
            "get": {"summary": "The secret signing webhooks given with submissions (made on first use)",
                    "responses": _ok(200, "The secret", SigningSecretOut)},
        },
        "/v1/webhooks/signing-secret/rotate": {
            "post": {"summary": "Rotate the submissions' signing secret",
                     "responses": _ok(200, "The new secret", SigningSecretOut)},
        },
    }
