"""Reading and validating request bodies into schema models, with problem+json errors.

Every JSON document a request brings (a body, a form field holding JSON) is read by
:func:`json_document`, and every form and query string passes :mod:`api.intake.characters`, so
what the database cannot store is refused here rather than failing the INSERT.
"""
from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.datastructures import MultiDict

from api.intake.characters import Path, UnsafeInput, check_text, parse_json, unstorable_reason
from api.problems import Problem

Model = TypeVar("Model", bound=BaseModel)
IDEMPOTENCY_KEY_MAX = 255


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` header, or None; 400 when it is empty, too long or unstorable."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip().strip('"')
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise Problem(400, "invalid-idempotency-key", "Invalid Idempotency-Key",
                      f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters.")
    if reason := unstorable_reason(key):
        raise Problem(400, "invalid-idempotency-key", "Invalid Idempotency-Key", f"Idempotency-Key {reason}.")
    return key


def unsafe_input_problem(error: UnsafeInput, status: int = 422) -> Problem:
    return Problem(status, error.slug, error.title, error.detail, **error.extensions())


def json_document(data: bytes | str, root: Path = ()) -> object:
    """A parsed JSON document (``ValueError`` when it is not JSON); unstorable or too deep, a 422."""
    try:
        return parse_json(data, root)
    except UnsafeInput as error:
        raise unsafe_input_problem(error) from None


def json_body() -> object:
    if not request.is_json:
        raise Problem(415, "unsupported-media-type", "Unsupported Media Type",
                      "Send the body as JSON with Content-Type: application/json.")
    body = optional_json_body()
    if body is None:
        raise Problem(400, "invalid-json", "Invalid JSON", "The request body is not valid JSON.")
    return body


def optional_json_body() -> object | None:
    """The body as JSON, or None when it is not JSON (or JSON ``null``), for endpoints that say why
    in their own words; a JSON document this API refuses is still a 422."""
    if not request.is_json:
        return None
    try:
        return json_document(request.get_data(cache=True))
    except ValueError:
        return None


def check_form(form: MultiDict, files: MultiDict) -> None:
    """Every field of a form (multipart or urlencoded) has a name, and its value or file name can be stored."""
    if None in form or None in files:
        raise Problem(400, "invalid-multipart", "Invalid multipart body",
                      "Every part of a multipart/form-data body needs a `name` in its Content-Disposition.")
    try:
        for name, value in form.items(multi=True):
            check_text(name, "form field name")
            check_text(value, name)
        for name, upload in files.items(multi=True):
            check_text(name, "form field name")
            check_text(upload.filename or "", name)
    except UnsafeInput as error:
        raise unsafe_input_problem(error) from None


def check_query() -> None:
    """Before every request: query parameters end up compared with columns, so they must be storable text."""
    try:
        for name, value in request.args.items(multi=True):
            check_text(name, "query parameter name")
            check_text(value, name)
    except UnsafeInput as error:
        raise unsafe_input_problem(error, status=400) from None


def _location(error: dict) -> str:
    return ".".join(str(part) for part in error["loc"]) or "body"


def invalid(field_name: str, message: str) -> Problem:
    return Problem(422, "validation-error", "Invalid request", f"{field_name}: {message}",
                   errors=[{"field": field_name, "message": message}])


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
        document = json_document(raw, root=("webhook",))
    except ValueError:
        raise invalid("webhook", "must be a JSON object") from None
    try:
        return model.model_validate(document)
    except ValidationError as error:
        problem = validation_problem(error)
        for entry in problem.extensions.get("errors", []):
            entry["field"] = f"webhook.{entry['field']}"
        raise problem from None
