"""`/openapi.json` built from the pydantic schemas that validate requests, and a docs page served offline."""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

from flask import Blueprint, Response, abort, send_from_directory
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.schemas import analytics as analytics_schemas
from api.schemas import events as event_schemas
from api.schemas import insights as insight_schemas
from api.schemas import jobs as schemas
from api.schemas import privacy as privacy_schemas
from api.schemas import webhooks as webhook_schemas
from config import job_types

bp = Blueprint("openapi", __name__)
#: The assets change only with the pinned package, so browsers may keep them a day.
DOCS_ASSET_MAX_AGE_S = 86_400

COMPONENT_MODELS = (
    schemas.JobCreate, schemas.JobOut, schemas.JobList, schemas.ProblemDetails,
    schemas.TokenRequest, schemas.TokenResponse, schemas.EmotionResult,
    schemas.BatchCreate, schemas.BatchItem, schemas.BatchOut, schemas.BatchList, schemas.BatchResultLine,
    schemas.TranscriptionResult, schemas.SummaryResult, schemas.AnalyzeResult,
    *webhook_schemas.COMPONENT_MODELS, *analytics_schemas.COMPONENT_MODELS,
    *insight_schemas.COMPONENT_MODELS, *event_schemas.COMPONENT_MODELS, *privacy_schemas.COMPONENT_MODELS,
)


def component_models() -> list[type[BaseModel]]:
    """The fixed models and every registered job type's options model."""
    options = [entry.options for entry in job_types.JOB_TYPES.values()]
    return list(dict.fromkeys([*COMPONENT_MODELS, *options]))


def types_taking(medium: str) -> list[str]:
    return [entry.name for entry in job_types.JOB_TYPES.values() if getattr(entry, medium)]

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}


def ref(model: type[BaseModel]) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def json_content(model: type[BaseModel]) -> dict:
    return {"application/json": {"schema": ref(model)}}


def _always(_path: str, _method: str, _operation: dict) -> bool:
    return True


def _authenticated(_path: str, _method: str, operation: dict) -> bool:
    return operation.get("security") != []


def _limited(path: str, method: str, operation: dict) -> bool:
    return _authenticated(path, method, operation) or (path, method) in CREDENTIAL_EXCHANGES


def _takes_a_body(_path: str, _method: str, operation: dict) -> bool:
    return "requestBody" in operation


def _names_a_resource(path: str, method: str, _operation: dict) -> bool:
    return "{" in path or (path, method) in NAMED_IN_THE_BODY


def _checks_its_query(path: str, _method: str, _operation: dict) -> bool:
    return path.startswith(ANALYTICS_PREFIXES)


def _reads_the_database(path: str, method: str, operation: dict) -> bool:
    return _limited(path, method, operation) or path == "/readyz"


#: Operations that exchange credentials without being authenticated: throttled and checked like the rest.
CREDENTIAL_EXCHANGES = {("/v1/auth/token", "post")}
#: Operations whose body names a resource of the caller's (a 404 when it is not).
NAMED_IN_THE_BODY = {("/v1/events/tickets", "post")}
#: Operations whose query (time range, bucket, time zone, durations) is checked with a 422.
ANALYTICS_PREFIXES = ("/v1/subjects/", "/v1/analytics/")
#: Operations that can conflict with a resource's state or with an earlier request under the same
#: Idempotency-Key.
CONFLICTING = {("/v1/jobs", "post"), ("/v1/batches", "post"), ("/v1/jobs/{job_id}/cancel", "post"),
               ("/v1/batches/{batch_id}/cancel", "post"), ("/v1/webhooks/deliveries/{delivery_id}/redeliver", "post")}

#: Every problem status the API answers, what it means, and which operations can answer it. The
#: document's problem responses are derived from this table, never written per route.
PROBLEM_STATUSES = (
    (400, "Malformed request: credentials in both headers, a malformed query, header, id or body", _always),
    (401, "Missing, invalid, expired or revoked credentials (or a stream ticket that is unknown, expired or used)",
     _limited),
    (403, "The key's scopes do not allow this operation (or the stream ticket is for another stream)",
     _authenticated),
    (404, "No such resource among the caller's", _names_a_resource),
    (409, "Conflicts with the resource's state or an earlier request with this Idempotency-Key",
     lambda path, method, _operation: (path, method) in CONFLICTING),
    (413, "Request body larger than the limit", _takes_a_body),
    (414, "Request line longer than the server accepts (answered before the app)", _always),
    (415, "Unsupported Content-Type", _takes_a_body),
    (422, "Well-formed but invalid input", lambda path, method, operation: _takes_a_body(path, method, operation)
     or _checks_its_query(path, method, operation) or (path, method) in CREDENTIAL_EXCHANGES),
    (429, "Rate limit, jobs in flight or credential throttle reached; see Retry-After", _limited),
    (431, "Request header fields larger than the server accepts (answered before the app)", _always),
    (503, "A dependency (database, Redis) is unavailable, or the service is not ready; see Retry-After",
     _reads_the_database),
)


def problem_responses(path: str, method: str, operation: dict) -> dict:
    return {str(status): {"description": description, "content": PROBLEM}
            for status, description, answers in PROBLEM_STATUSES if answers(path, method, operation)}


def with_problem_responses(paths: dict) -> dict:
    """Each operation's own responses plus, from :data:`PROBLEM_STATUSES`, the problems it can answer."""
    for path, operations in paths.items():
        for method, operation in operations.items():
            operation["responses"] = {**operation["responses"], **problem_responses(path, method, operation)}
    return paths


def audio_upload() -> dict:
    return {"multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["type", "file"],
            "properties": {
                "type": {"type": "string", "enum": types_taking("audio")},
                "file": {"type": "string", "format": "binary",
                         "description": "WAV, FLAC, MP3, OGG/Opus, M4A... up to SAMO_MAX_UPLOAD_BYTES "
                                        "(25 MiB) and SAMO_MAX_AUDIO_SECONDS (600 s)."},
                "options": {"type": "string", "description": "A JSON object: TranscribeOptions or AnalyzeOptions."},
                "services": {"type": "string",
                             "description": "`analyze`: a JSON array or comma-separated list of emotion, summary."},
                "webhook": {"type": "string", "description": "A JSON JobWebhook object: called when the job ends."},
                "subject": {"type": "string", "maxLength": 128, "description": "As in JobCreate."},
                "occurred_at": {"type": "string", "format": "date-time", "description": "As in JobCreate."},
                "metadata": {"type": "string", "description": "A JSON object, as JobCreate's `metadata`."},
            },
        },
    }}

JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
PAGE = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}}]

BATCH_UPLOAD = {
    **json_content(schemas.BatchCreate),
    "application/x-ndjson": {"schema": {"type": "string"}, "example": '{"text": "I love it", "id": "r1"}\n"So sad"\n'},
    "text/csv": {"schema": {"type": "string"}, "example": "id,text\nr1,I love it\n"},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "*.jsonl / *.ndjson, *.csv (a `text` column; optional `id`, `subject`, "
                                    "`occurred_at` and `metadata` columns) or *.json."},
            "format": {"type": "string", "enum": ["jsonl", "csv", "json"],
                       "description": "When the file name does not say."},
            "webhook": {"type": "string", "description": "A JSON BatchWebhook object."},
        },
    }},
}


def batch_paths() -> dict:
    return {
        "/v1/batches": {
            "post": {
                "summary": "Upload a batch of texts (JSON array or object, JSONL, CSV, or a multipart file)",
                "description": "Up to SAMO_BATCH_MAX_ITEMS items (100,000) and SAMO_BATCH_MAX_BYTES (50 MiB). "
                               "Invalid rows are listed in `errors` by row number; the valid ones run.",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"},
                                "description": "A retry of the same upload answers with the batch it started; "
                                               "a different upload under the same key is a 409."}],
                "requestBody": {"required": True, "content": BATCH_UPLOAD},
                "responses": {"202": {"description": "Accepted; poll the Location.",
                                      "content": json_content(schemas.BatchOut)}},
            },
            "get": {
                "summary": "List batches, newest first",
                "parameters": [{"name": "status", "in": "query", "schema": {"type": "string"},
                                "description": "Comma-separated: running, completed, canceled."}, *PAGE],
                "responses": {"200": {"description": "A page of batches", "content": json_content(schemas.BatchList)}},
            },
        },
        "/v1/batches/{batch_id}": {
            "get": {"summary": "A batch: counts by status, progress, estimated time left", "parameters": [BATCH_ID],
                    "responses": {"200": {"description": "The batch", "content": json_content(schemas.BatchOut)}}},
            "delete": privacy_schemas.deletion("batch and all its items (scope jobs:delete)", BATCH_ID),
        },
        "/v1/batches/{batch_id}/results": {
            "get": {"summary": "Finished items in row order, streamed; partial while the batch runs",
                    "parameters": [BATCH_ID, {"name": "format", "in": "query",
                                              "schema": {"type": "string", "enum": ["jsonl", "csv"]},
                                              "description": "Or Accept: text/csv / application/x-ndjson."}],
                    "responses": {"200": {"description": "One BatchResultLine per line (JSONL) or row (CSV). In CSV "
                                                         "a text cell starting with =, +, -, @, tab or CR is prefixed "
                                                         "with ' so that spreadsheets do not run it as a formula.",
                                          "content": {"application/x-ndjson": {"schema": ref(schemas.BatchResultLine)},
                                                      "text/csv": {"schema": {"type": "string"}}}}}},
        },
        "/v1/batches/{batch_id}/jobs": {
            "get": {"summary": "The batch's items as jobs, in row order", "parameters": [BATCH_ID, *PAGE],
                    "responses": {"200": {"description": "A page of jobs", "content": json_content(schemas.JobList)}}},
        },
        "/v1/batches/{batch_id}/cancel": {
            "post": {"summary": "Cancel a running batch and its unfinished items", "parameters": [BATCH_ID],
                     "responses": {"200": {"description": "Canceled", "content": json_content(schemas.BatchOut)}}},
        },
    }


def paths() -> dict:
    return {
        "/v1/jobs": {
            "post": {
                "summary": "Submit a job",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}},
                               {"name": "Prefer", "in": "header", "schema": {"type": "string", "example": "wait=10"},
                                "description": "`wait=N` (N <= 60): answer 200 with the result if the job "
                                               "ends within N seconds, else 202 as usual."}],
                "description": f"Text jobs ({', '.join(types_taking('text'))}) take JSON; audio jobs "
                               f"({', '.join(types_taking('audio'))} of a recording) take multipart/form-data.",
                "requestBody": {"required": True, "content": {**json_content(schemas.JobCreate), **audio_upload()}},
                "responses": {"200": {"description": "Finished within `Prefer: wait`",
                                      "content": json_content(schemas.JobOut)},
                              "202": {"description": "Accepted; poll the Location.",
                                      "content": json_content(schemas.JobOut)}},
            },
            "get": {
                "summary": "List jobs, newest first",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string"},
                     "description": "Comma-separated statuses."},
                    {"name": "type", "in": "query", "schema": {"type": "string", "enum": job_types.names()}},
                    {"name": "batch", "in": "query", "schema": {"type": "string"},
                     "description": "A batch id (its items) or `none` (interactive jobs only)."},
                    {"name": "subject", "in": "query", "schema": {"type": "string"}},
                    {"name": "occurred_after", "in": "query", "schema": {"type": "string", "format": "date-time"},
                     "description": "Entries that occurred at or after this time (RFC 3339)."},
                    {"name": "occurred_before", "in": "query", "schema": {"type": "string", "format": "date-time"},
                     "description": "Entries that occurred before this time (RFC 3339)."},
                    *PAGE,
                ],
                "responses": {"200": {"description": "A page of jobs", "content": json_content(schemas.JobList)}},
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {"summary": "Get a job", "parameters": [JOB_ID],
                    "responses": {"200": {"description": "The job", "content": json_content(schemas.JobOut)}}},
            "delete": privacy_schemas.deletion("job (scope jobs:delete)", JOB_ID),
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {"summary": "Cancel a queued or running job", "parameters": [JOB_ID],
                     "responses": {"200": {"description": "Canceled", "content": json_content(schemas.JobOut)}}},
        },
        **batch_paths(),
        "/v1/auth/token": {
            "post": {"summary": "Exchange an API key or a refresh token for an access token",
                     "security": [],
                     "requestBody": {"required": True, "content": json_content(schemas.TokenRequest)},
                     "responses": {"200": {"description": "Tokens", "content": json_content(schemas.TokenResponse)}}},
        },
        **webhook_schemas.webhook_paths(),
        **event_schemas.event_paths(json_content),
        **analytics_schemas.timeline_paths(json_content),
        **insight_schemas.insight_paths(json_content),
        **privacy_schemas.privacy_paths(json_content, PAGE),
        "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "Alive"}}}},
        "/readyz": {"get": {"summary": "Readiness of database, Redis and workers", "security": [],
                            "responses": {"200": {"description": "Ready"}}}},
    }


def openapi_document() -> dict:
    return _document(tuple(job_types.JOB_TYPES.values()))


@lru_cache(maxsize=4)
def _document(_registered: tuple) -> dict:
    """Built once per set of registered job types."""
    _, definitions = models_json_schema(
        [(model, "validation") for model in component_models()], ref_template="#/components/schemas/{model}"
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "SAMO Brain API", "version": "1.0.0",
                 "description": "Asynchronous emotion analysis of text and voice. "
                                f"Try it in the [web console]({CONSOLE_URL}); the Python SDK is `{SDK_README}` "
                                "in the repository."},
        "paths": with_problem_responses(paths()),
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
        "security": [{"ApiKey": []}, {"Bearer": []}],
    }


@bp.get("/openapi.json")
def openapi_json():
    return openapi_document()


DOCS_ASSETS_URL = "/docs/assets"
CONSOLE_URL = "/console"
#: The SDK is installed from the repository (``pip install ./sdk/python``); its README is the guide.
SDK_README = "sdk/python/README.md"
#: The Swagger UI files the page loads; nothing else of the package is served.
DOCS_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})

DOCS_PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>SAMO Brain API</title>
<link rel="icon" type="image/png" href="{DOCS_ASSETS_URL}/favicon-32x32.png" sizes="32x32">
<link rel="stylesheet" href="{DOCS_ASSETS_URL}/swagger-ui.css"></head>
<body><nav aria-label="More"><a href="{CONSOLE_URL}">Web console</a> ·
Python SDK: <code>{SDK_README}</code> in the repository (<code>pip install ./sdk/python</code>)</nav>
<div id="docs"></div>
<script src="{DOCS_ASSETS_URL}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#docs"}});</script>
<noscript>The machine-readable API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>"""


@lru_cache(maxsize=1)
def swagger_ui_directory() -> str:
    """Swagger UI as released, shipped by the swagger-ui-py package, so /docs works with no network.

    Located without importing the package, whose adapters the API does not use.
    """
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (requirements/api.txt)")
    return os.path.join(spec.submodule_search_locations[0], "static")


@bp.get("/docs")
def docs():
    return Response(DOCS_PAGE, mimetype="text/html")


@bp.get(f"{DOCS_ASSETS_URL}/<name>")
def docs_asset(name: str):
    if name not in DOCS_ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_directory(), name, max_age=DOCS_ASSET_MAX_AGE_S)
