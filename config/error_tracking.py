"""Error tracking with Sentry (``SAMO_SENTRY_DSN``): the API's and workers' unhandled errors.

Off unless the DSN is set, and then nothing of sentry_sdk is imported. Every event passes
:func:`scrub` before it leaves the process: input texts are cut out wherever they appear (an
exception message quoting its input included), as are API keys, webhook secrets, tokens and
credentials, and request bodies, cookies and local variables are never attached. The texts are
those the process holds right now: the current request's (the API registers a source reading
it) and the current batch's (``tasks.lifecycle`` names them with :func:`handling`).
"""
from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

FILTERED = "[Filtered]"
INPUT = "[input text]"
#: Keys whose values are credentials or input, wherever they are in an event.
SENSITIVE_KEY = re.compile(r"authorization|api[-_]?key|secret|password|passwd|token|signature|cookie|dsn|"
                           r"^text$|^texts$|^input$|^body$|^data$", re.IGNORECASE)
#: Credentials by their shape: API keys (db.api_keys), webhook secrets (workers.webhook_signing),
#: bearer tokens and passwords in URLs.
SECRET_VALUE = re.compile(r"samo_[0-9a-f]{8}_[\w-]+|whsec_[\w+/=]+|(?<=Bearer )[\w.-]+|(?<=ApiKey )[\w.-]+|"
                          r"(?<=://)[^/\s:@]*:[^/\s@]+(?=@)")
#: Shorter strings are not cut out of events: they would match ordinary words.
MIN_INPUT_CHARS = 4


class _State:
    enabled = False
    input_sources: list[Callable[[], Iterable[str]]] = []


_state = _State()
_current_inputs: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("samo_inputs", default=())


def setup(dsn: str, environment: str, integrations: Iterable[Any] = ()) -> None:
    """Start the SDK with ``integrations`` (the caller's: Flask for the API, Celery for workers)."""
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn, environment=environment, integrations=list(integrations), before_send=scrub,
        before_breadcrumb=scrub_breadcrumb, send_default_pii=False, include_local_variables=False,
        max_request_body_size="never", auto_enabling_integrations=False, traces_sample_rate=None,
    )
    _state.enabled = True


def enabled() -> bool:
    return _state.enabled


def capture(error: BaseException) -> None:
    """Report an error that was handled (a job's model failure), scrubbed like any event."""
    if _state.enabled:
        import sentry_sdk

        sentry_sdk.capture_exception(error)


def add_input_source(source: Callable[[], Iterable[str]]) -> None:
    """A function giving the input texts of what the process is handling now (the API's request)."""
    _state.input_sources.append(source)


@contextlib.contextmanager
def handling(texts: Iterable[str]) -> Iterator[None]:
    """While the block runs, ``texts`` are cut out of any event."""
    if not _state.enabled:
        yield
        return
    token = _current_inputs.set(tuple(text for text in texts if isinstance(text, str)))
    try:
        yield
    finally:
        _current_inputs.reset(token)


def current_inputs() -> list[str]:
    texts = list(_current_inputs.get())
    for source in _state.input_sources:
        try:
            texts += list(source())
        except Exception:  # noqa: BLE001, S112 - a source that cannot answer scrubs nothing more
            continue
    return sorted({text for text in texts if len(text) >= MIN_INPUT_CHARS}, key=len, reverse=True)


def scrub(event: dict, _hint: dict | None = None) -> dict:
    """The event with input texts and credentials taken out (Sentry's ``before_send``)."""
    request = event.get("request")
    if isinstance(request, dict):
        for part in ("data", "cookies", "query_string", "env"):
            request.pop(part, None)
    for exception in (event.get("exception") or {}).get("values", []):
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    return _clean(event, current_inputs())


def scrub_breadcrumb(crumb: dict, _hint: dict | None = None) -> dict:
    return _clean(crumb, current_inputs())


def _clean(value: Any, inputs: list[str], key: str = "") -> Any:
    if key and SENSITIVE_KEY.search(key):
        return FILTERED if value not in (None, "", [], {}) else value
    if isinstance(value, dict):
        return {k: _clean(v, inputs, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item, inputs) for item in value]
    if isinstance(value, str):
        for text in inputs:
            value = value.replace(text, INPUT)
        return SECRET_VALUE.sub(FILTERED, value)
    return value
