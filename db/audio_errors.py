"""The one error type of uploaded audio and its transcription, with codes the API can map to responses.

The API's upload probe (``db.audio_probe``) and the speech workers raise it; it imports
nothing, so the API process can catch it and read its codes without the model stack.
"""
from __future__ import annotations

AUDIO_UNREADABLE = "audio_unreadable"
AUDIO_EMPTY = "audio_empty"
AUDIO_SILENT = "audio_silent"
AUDIO_TOO_LONG = "audio_too_long"
LANGUAGE_UNSUPPORTED = "language_unsupported"
MODEL_UNAVAILABLE = "model_unavailable"
TRANSCRIPTION_FAILED = "transcription_failed"

#: Codes caused by the upload itself: retrying the same file cannot succeed (a 4xx / 422).
CLIENT_CODES = frozenset(
    {AUDIO_UNREADABLE, AUDIO_EMPTY, AUDIO_SILENT, AUDIO_TOO_LONG, LANGUAGE_UNSUPPORTED}
)
#: Codes caused by the worker: the job may succeed elsewhere or later (a 5xx / retry).
SERVER_CODES = frozenset({MODEL_UNAVAILABLE, TRANSCRIPTION_FAILED})
CODES = CLIENT_CODES | SERVER_CODES


class TranscriptionError(Exception):
    """A failure with a stable machine-readable ``code`` and a human-readable ``message``.

    Codes: ``audio_unreadable`` (corrupt, truncated before any audio, or not audio at all),
    ``audio_empty`` (no audio stream, or zero decodable samples), ``audio_silent`` (no speech
    found), ``audio_too_long`` (over the caller's limit), ``language_unsupported`` (e.g.
    French asked of an English-only model), ``model_unavailable`` (the model could not be
    loaded) and ``transcription_failed`` (the model failed on valid audio).
    """

    def __init__(self, code: str, message: str):
        if code not in CODES:
            raise ValueError(f"unknown TranscriptionError code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def is_client_error(self) -> bool:
        return self.code in CLIENT_CODES

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}
