"""What each job type accepts, and turning one `POST /v1/jobs` into what a job stores.

Two body shapes reach the same endpoint:

* JSON (``application/json``): text jobs, ``emotion``, ``summarize`` and ``analyze`` of a text;
* ``multipart/form-data``: audio jobs, ``transcribe`` and ``analyze`` of a recording, with a
  ``file`` part, a ``type`` field and optional ``options`` (a JSON object) and ``services``
  (a JSON array or a comma-separated list) fields.

Both take the entry's ``subject``, ``occurred_at`` and ``metadata`` (``api.intake.entries``).

Either way the result is a :class:`Submission`: the type, the ``input`` and ``options``
documents the job row stores, the fingerprint idempotency keys compare, and for audio the
staged upload. An upload not claimed by a committed job is removed when the request ends.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from flask import g, request
from pydantic import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from api.extensions import settings
from api.intake.audio import AudioUpload, stage_audio, too_large
from api.intake.entries import Entry, EntryFieldError, entry_of
from api.intake.requests import (
    check_form,
    form_webhook,
    invalid,
    json_body,
    json_document,
    validation_problem,
)
from api.problems import Problem
from api.schemas import jobs as schemas
from api.schemas.webhooks import JobWebhook
from config.job_types import JOB_TYPES, JobType
from db.media import discard, place

#: Form fields a multipart submission may carry besides the `file` part.
FORM_FIELDS = {"type", "options", "services", "webhook", "subject", "occurred_at", "metadata"}


@dataclass
class Submission:
    type: str
    input: dict
    options: dict
    fingerprint: str
    entry: Entry = field(default_factory=Entry)
    job_id: uuid.UUID = field(default_factory=uuid.uuid4)
    #: The validated JSON body (None for multipart).
    body: schemas.JobCreate | None = None
    #: Called when the job ends: the JSON body's ``webhook`` or a multipart form's ``webhook`` field.
    webhook: JobWebhook | None = None
    upload: AudioUpload | None = None
    _placed: Path | None = None
    _committed: bool = False

    def place_media(self) -> None:
        """Give the staged upload its job's name; call before the job row is committed."""
        if self.upload is not None and self._placed is None:
            self._placed = place(settings(), self.upload.staged, self.job_id, self.upload.filename)

    def committed(self) -> None:
        self._committed = True

    def release(self) -> None:
        """Remove an upload whose job was never committed (refused, replayed, or failed to store)."""
        if self.upload is None or self._committed:
            return
        self.upload.staged.path.unlink(missing_ok=True)
        if self._placed is not None:
            discard(settings(), self.job_id)


def request_fingerprint(raw_body: object) -> str:
    canonical = json.dumps(raw_body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def unknown_type(value: object) -> Problem:
    return Problem(422, "unknown-job-type", "Unknown job type",
                   f"`type` must be one of: {', '.join(JOB_TYPES)}.",
                   errors=[{"field": "type", "message": f"unknown job type {value!r}"}])


def check_text(text: str, limit: int) -> None:
    if not text.strip():
        raise Problem(422, "empty-text", "Empty text", "`input.text` must contain non-whitespace characters.")
    if len(text) > limit:
        raise Problem(422, "text-too-long", "Text too long",
                      f"`input.text` has {len(text)} characters; the limit is {limit}.",
                      max_chars=limit, chars=len(text))


def options_problem(errors: list[dict]) -> Problem:
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Problem(422, "validation-error", "Invalid request", detail, errors=errors)


def validate_options(kind: JobType, options: dict) -> dict:
    try:
        model = kind.options.model_validate(options)
    except ValidationError as error:
        raise options_problem([
            {"field": ".".join(["options", *map(str, e["loc"])]), "message": e["msg"]}
            for e in error.errors(include_url=False)
        ]) from None
    validated = model.model_dump(exclude_none=True)
    check_emotion_model(validated.get("model"))
    return validated


def check_emotion_model(key: str | None) -> None:
    """``options.model`` names one of the emotion models this deployment configures."""
    configured = settings().emotion_model_refs
    if key is not None and key not in configured:
        raise options_problem([{"field": "options.model",
                                "message": f"unknown model {key!r}; the models are {', '.join(configured)}"}])


def merge_services(kind: JobType, options: dict, services: list | None) -> dict:
    if services is None:
        return options
    if kind.name != "analyze":
        raise invalid("services", "only `analyze` jobs take `services`")
    if "services" in options:
        raise invalid("services", "give `services` once, at the top level or in `options`")
    return {**options, "services": services}


def read_submission() -> Submission:
    submission = read_multipart() if request.mimetype == "multipart/form-data" else read_json()
    g.samo_submission = submission
    return submission


def release_submission(_exc: BaseException | None = None) -> None:
    submission = g.pop("samo_submission", None)
    if submission is not None:
        submission.release()


def read_json() -> Submission:
    raw = json_body()
    declared = raw.get("type") if isinstance(raw, dict) else None
    if isinstance(declared, str) and declared in JOB_TYPES and not JOB_TYPES[declared].text:
        raise Problem(415, "unsupported-media-type", "Unsupported Media Type",
                      f"`{declared}` jobs take an audio file: send multipart/form-data with a `file` part "
                      "and a `type` field.")
    try:
        body = schemas.JobCreate.model_validate(raw)
    except ValidationError as error:
        raise validation_problem(error) from None
    kind = JOB_TYPES[body.type]
    options = validate_options(kind, merge_services(kind, body.options, body.services))
    check_text(body.input.text, getattr(settings(), kind.text_limit))
    return Submission(body.type, body.input.model_dump(), options, request_fingerprint(raw),
                      entry=Entry(body.subject, body.occurred_at, body.metadata), body=body, webhook=body.webhook)


def form_services(raw: str | None) -> list | None:
    """A JSON array (``["emotion"]``) or a comma-separated list (``emotion,summary``)."""
    if raw is None:
        return None
    try:
        parsed = json_document(raw, root=("services",))
    except ValueError:
        parsed = [part.strip() for part in raw.split(",") if part.strip()]
    if not isinstance(parsed, list):
        raise invalid("services", "must be a JSON array or a comma-separated list")
    return parsed


def form_options(raw: str | None) -> dict:
    if raw is None or not raw.strip():
        return {}
    try:
        parsed = json_document(raw, root=("options",))
    except ValueError:
        raise invalid("options", "must be a JSON object") from None
    if not isinstance(parsed, dict):
        raise invalid("options", "must be a JSON object")
    return parsed


def read_multipart() -> Submission:
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        raise too_large(settings().max_upload_bytes) from None
    check_form(form, files)
    declared = form.get("type")
    kind = JOB_TYPES.get(declared or "")
    if kind is None:
        raise unknown_type(declared)
    if not kind.audio:
        raise Problem(415, "unsupported-media-type", "Unsupported Media Type",
                      f"`{kind.name}` jobs take a JSON body (Content-Type: application/json).")
    extra = (set(form) - FORM_FIELDS) | (set(files) - {"file"})
    if extra:
        raise invalid(sorted(extra)[0], "unexpected field; allowed: file, " + ", ".join(sorted(FORM_FIELDS)))
    uploads = files.getlist("file")
    if not uploads:
        raise Problem(422, "missing-file", "Audio file missing",
                      f"`{kind.name}` jobs need the recording as a `file` part.")
    if len(uploads) > 1:
        raise invalid("file", "send one file per job")
    options = validate_options(kind, merge_services(kind, form_options(form.get("options")),
                                                     form_services(form.get("services"))))
    webhook = form_webhook(JobWebhook)
    try:
        entry = entry_of(form)
    except EntryFieldError as error:
        raise invalid(error.field, error.message) from None
    job_id = uuid.uuid4()
    upload = stage_audio(uploads[0], job_id, settings())
    asked = {"type": kind.name, "options": options, "filename": upload.filename, "sha256": upload.staged.sha256}
    if webhook is not None:  # absent, the fingerprint stays what it was before forms took a webhook
        asked["webhook"] = webhook.model_dump(mode="json")
    asked.update(entry.fingerprint())
    return Submission(kind.name, upload.input_document(), options, request_fingerprint(asked), entry=entry,
                      job_id=job_id, upload=upload, webhook=webhook)
