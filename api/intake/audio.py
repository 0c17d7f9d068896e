"""Audio uploads for `transcribe` and `analyze` jobs: size limits, staging, a header probe.

The JSON body limit (``MAX_CONTENT_LENGTH``, 1 MB) stays the app default; only a multipart
``POST /v1/jobs`` may be as large as ``max_upload_bytes``. A declared ``Content-Length`` over
that is refused before a byte of the body is read; a body that turns out longer (chunked, or a
lying header) is cut off by Werkzeug's stream limit with the same 413. Either way nothing
reaches the media directory.

The API checks only what it can check cheaply: size, emptiness, and what the container headers
say (PyAV, imported on the first upload; never the model stack). A file whose headers cannot be
read as audio (a picture, a text, random bytes) is refused with the probe's error code
(``audio_unreadable`` as `audio-unreadable`, ``audio_empty`` as `audio-empty`), as is one over
the duration limit. A real recording that is damaged past its headers (cut off in transfer) is
accepted: only decoding finds that, and its job fails in the worker with a precise code.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from flask import request
from werkzeug.datastructures import FileStorage

from api.extensions import settings
from api.problems import Problem
from config.settings import Settings
from db.media import StagedUpload, stage_upload

#: Room for the form fields and part headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
MAX_FILENAME_CHARS = 200


def is_multipart() -> bool:
    return request.mimetype == "multipart/form-data"


def too_large(limit: int) -> Problem:
    readable = f" ({limit / 2**20:g} MiB)" if limit >= 2**20 else ""
    return Problem(413, "payload-too-large", "Upload too large",
                   f"Audio uploads may be at most {limit} bytes{readable}.", max_bytes=limit)


def allow_large_uploads() -> None:
    """Before the body is read: lift the body limit to the upload limit for multipart submissions."""
    if request.method != "POST" or not is_multipart():
        return
    limit = settings().max_upload_bytes
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD_BYTES:
        raise too_large(limit)
    request.max_content_length = limit + MULTIPART_OVERHEAD_BYTES


def clean_filename(name: str | None) -> str:
    """The base name only: clients send anything from ``C:\\Users\\x\\a.wav`` to nothing."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name.strip()
    return base[-MAX_FILENAME_CHARS:] or "upload"


@dataclass
class AudioUpload:
    staged: StagedUpload
    filename: str
    content_type: str | None
    probe: dict

    def input_document(self) -> dict:
        """What the job's ``input`` shows; the worker finds the file from the job id and name."""
        audio = {
            "filename": self.filename,
            "content_type": self.content_type,
            "size_bytes": self.staged.size_bytes,
            "sha256": self.staged.sha256,
        }
        return {"audio": audio | self.probe}


def stage_audio(upload: FileStorage, job_id: uuid.UUID, config: Settings) -> AudioUpload:
    staged = stage_upload(config, job_id, upload.stream)
    try:
        if staged.size_bytes > config.max_upload_bytes:
            raise too_large(config.max_upload_bytes)
        if staged.size_bytes == 0:
            raise Problem(422, "empty-file", "Empty file", "The uploaded `file` has no content.")
        probe = probe_header(staged, config.max_audio_seconds)
    except BaseException:
        staged.path.unlink(missing_ok=True)
        raise
    return AudioUpload(staged, clean_filename(upload.filename), upload.mimetype or None, probe)


PROBE_TITLES = {"audio_unreadable": "Unreadable audio", "audio_empty": "No audio"}


def probe_header(staged: StagedUpload, max_seconds: float) -> dict:
    """Format and duration from the headers; a 422 named after the probe's code when they say no."""
    from db.audio_errors import AUDIO_TOO_LONG, TranscriptionError
    from db.audio_probe import probe_audio

    try:
        info = probe_audio(staged.path, max_duration_s=max_seconds)
    except TranscriptionError as error:
        if error.code == AUDIO_TOO_LONG:
            raise Problem(422, "audio-too-long", "Audio too long", error.message + ".",
                          max_seconds=max_seconds) from None
        raise Problem(422, error.code.replace("_", "-"), PROBE_TITLES.get(error.code, "Unusable audio"),
                      f"The uploaded `file` cannot be used: {error.message}.", code=error.code) from None
    return {
        "duration_s": round(info.duration_s, 3),
        "format": info.format_name,
        "codec": info.codec,
    }
