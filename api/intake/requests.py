"""Reading and validating request bodies into schema models, with problem+json errors."""
from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from api.problems import Problem

Model = TypeVar("Model", bound=BaseModel)
IDEMPOTENCY_KEY_MAX = 255


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` header, or None; 400 when it is empty or too long."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip().strip('"')
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise Problem(400, "invalid-idempotency-key", "Invalid Idempotency-Key",
                      f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters.")
    return key


def json_body() -> object:
    if not request.is_json:
        raise Problem(415, "unsupported-media-type", "Unsupported Media Type",
                      "Send the body as JSON with Content-Type: application/json.")
    body = request.get_json(silent=True)
    if body is None:
        raise Problem(400, "invalid-json", "Invalid JSON", "The request body is not valid JSON.")
    return body


def _location(error: dict) -> str:
    return ".".join(str(part) for part in error["loc"]) or "body"


def validation_problem(error: ValidationError) -> Problem:
    errors = [{"field": _location(e), "message": e["msg"]} for e in error.errors(include_url=False)]
    if any(e["field"] == "type" for e in errors):
        return Problem(422, "unknown-job-type", "Unknown job type",
                       "`type` must be one of the supported job types.", errors=errors)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Problem(422, "validation-error", "Invalid request", detail, errors=errors)


def parse_body(model: type[Model]) -> tuple[Model, object]:
    """The validated model and the raw JSON (kept for idempotency fingerprints)."""
    raw = json_body()
    try:
        return model.model_validate(raw), raw
    except ValidationError as error:
        raise validation_problem(error) from None


def form_webhook(model: type[Model]) -> Model | None:
    """The optional `webhook` field of a multipart form: a JSON object like a JSON submission's
    `webhook`; its errors name their fields under `webhook.`."""
    raw = request.form.get("webhook")
    if not raw:
        return None
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        problem = validation_problem(error)
        for entry in problem.extensions.get("errors", []):
            entry["field"] = f"webhook.{entry['field']}"
        raise problem from None
