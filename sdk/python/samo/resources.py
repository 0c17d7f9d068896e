"""The API's resources. Each method describes its request as a ``Call``; the client it belongs to sends it
(``Client``: the result; ``AsyncClient``: an awaitable, or an async iterator for lists and streams)."""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

import httpx

from samo._calls import Call, no_content, parse_model, without_none
from samo._uploads import audio_file, batch_body, with_progress
from samo.models import (
    Batch,
    Correlations,
    Delivery,
    Endpoint,
    Erasure,
    Insights,
    Job,
    ResultLine,
    SigningSecret,
    Timeline,
)

if TYPE_CHECKING:
    from samo._client import _BaseClient

#: The longest ``Prefer: wait`` the API honours.
MAX_PREFER_WAIT_S = 60
DEFAULT_WAIT_TIMEOUT_S = 300.0


def _iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _id(resource: Any) -> str:
    return str(getattr(resource, "id", resource))


def _comma(values: str | Iterable[str] | None) -> str | None:
    return values if values is None or isinstance(values, str) else ",".join(values)


def _subject_path(subject: str, tail: str = "") -> str:
    return f"/v1/subjects/{quote(subject, safe='')}{tail}"


def _as_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


class _Resource:
    def __init__(self, client: _BaseClient) -> None:
        self._client = client


class Jobs(_Resource):
    def create(self, type: str = "emotion", text: str | None = None,
               audio: str | os.PathLike | bytes | BinaryIO | None = None, **fields: Any) -> Job:
        """Submit a job of ``text`` (JSON) or of a recording ``audio`` (a path, bytes or a file; multipart).

        Keywords: ``options``, ``services`` (`analyze`), ``subject``, ``occurred_at``, ``metadata``,
        ``webhook`` (a URL or ``{"url", "events"}``), ``idempotency_key``, ``wait``. An
        ``Idempotency-Key`` is made per call (unless given) and sent on every retry of it, so a
        retried submission never makes a second job. ``wait`` (seconds, at most 60) asks the API
        to answer with the finished job if it ends by then (``Prefer: wait``).
        """
        return self._client._execute(self._create_call(type, text, audio, **fields))

    def _create_call(self, type: str, text: str | None, audio: Any, *, options: dict | None = None,
                     services: list[str] | None = None, subject: str | None = None,
                     occurred_at: datetime | str | None = None, metadata: dict | None = None,
                     webhook: str | dict | None = None, idempotency_key: str | None = None,
                     wait: float | None = None) -> Call:
        if (text is None) == (audio is None):
            raise ValueError("Give either text= or audio=.")
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        timeout = None
        if wait:
            seconds = int(min(wait, MAX_PREFER_WAIT_S))
            headers["Prefer"] = f"wait={seconds}"
            base = self._client.timeout
            timeout = httpx.Timeout(base.connect or 10.0, read=seconds + (base.read or 30.0), write=base.write,
                                    pool=base.pool)
        hook = {"url": webhook} if isinstance(webhook, str) else webhook
        entry = {"subject": subject, "occurred_at": _iso(occurred_at)}
        if text is not None:
            body = without_none({"type": type, "input": {"text": text}, "options": options, "services": services,
                                 "webhook": hook, "metadata": metadata, **entry})
            return Call("POST", "/v1/jobs", json=body, headers=headers, parse=parse_model(Job), timeout=timeout)
        form = without_none({"type": type, "options": _as_json(options), "services": _as_json(services),
                             "webhook": _as_json(hook), "metadata": _as_json(metadata), **entry})
        upload = {"file": audio_file(audio)}
        return Call("POST", "/v1/jobs", headers=headers, multipart=lambda: (form, upload), parse=parse_model(Job),
                    timeout=timeout)

    def run(self, type: str = "emotion", text: str | None = None, audio: Any = None, *,
            timeout: float | None = DEFAULT_WAIT_TIMEOUT_S, **fields: Any) -> Job:
        """Submit and wait for the finished job: ``Prefer: wait``, then the job's events, then polling."""
        wait = MAX_PREFER_WAIT_S if timeout is None else min(timeout, MAX_PREFER_WAIT_S)
        return self._client._run(self._create_call(type, text, audio, wait=wait, **fields), "/v1/jobs/{id}", Job,
                                 timeout)

    def get(self, job: Job | str) -> Job:
        return self._client._execute(self._fetch(job))

    def _fetch(self, job: Job | str) -> Call:
        return Call("GET", f"/v1/jobs/{_id(job)}", parse=parse_model(Job))

    def list(self, *, status: str | Iterable[str] | None = None, type: str | None = None, batch: str | None = None,
             subject: str | None = None, occurred_after: datetime | str | None = None,
             occurred_before: datetime | str | None = None, page_size: int | None = None):
        """Every matching job, newest first, asking for the next page only as the iteration reaches it."""
        params = {"status": _comma(status), "type": type, "batch": batch, "subject": subject,
                  "occurred_after": _iso(occurred_after), "occurred_before": _iso(occurred_before),
                  "limit": page_size}
        return self._client._pages(Call("GET", "/v1/jobs", params=params), Job)

    def wait(self, job: Job | str, timeout: float | None = DEFAULT_WAIT_TIMEOUT_S) -> Job:
        """The job once finished: from its event stream, else by polling; ``samo.WaitTimeout`` past ``timeout``."""
        current = job if isinstance(job, Job) else None
        return self._client._wait(current, self._fetch(job), Job, f"/v1/jobs/{_id(job)}/events", timeout)

    def events(self, job: Job | str):
        """The job's Server-Sent Events (``status``, ``progress``, then ``done``), as ``samo.Event``."""
        return self._client._events(f"/v1/jobs/{_id(job)}/events")

    def cancel(self, job: Job | str) -> Job:
        return self._client._execute(Call("POST", f"/v1/jobs/{_id(job)}/cancel", parse=parse_model(Job)))

    def delete(self, job: Job | str) -> None:
        """Delete the job and everything stored of it (cancelling it first if it still runs)."""
        return self._client._execute(Call("DELETE", f"/v1/jobs/{_id(job)}", parse=no_content))


class Batches(_Resource):
    def upload(self, source: str | os.PathLike | Iterable[Any], *, format: str | None = None,
               progress: bool = False, idempotency_key: str | None = None) -> Batch:
        """Upload a batch from a file (CSV, JSONL or JSON) or from texts / dicts (sent as JSONL).

        The body is streamed as it is read or generated, never held whole in memory; ``progress``
        shows a tqdm bar. A path or a list is sent again from its start on a retry; a one-shot
        iterator cannot be, so its upload is not retried.
        """
        body = with_progress(batch_body(source, format), progress)
        call = Call("POST", "/v1/batches", headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4()),
                                                    "Content-Type": body.content_type},
                    body=body.chunks, resendable=body.resendable, parse=parse_model(Batch))
        return self._client._execute(call)

    def get(self, batch: Batch | str) -> Batch:
        return self._client._execute(self._fetch(batch))

    def _fetch(self, batch: Batch | str) -> Call:
        return Call("GET", f"/v1/batches/{_id(batch)}", parse=parse_model(Batch))

    def list(self, *, status: str | Iterable[str] | None = None, page_size: int | None = None):
        return self._client._pages(Call("GET", "/v1/batches", params={"status": _comma(status), "limit": page_size}),
                                   Batch)

    def jobs(self, batch: Batch | str, *, page_size: int | None = None):
        """The batch's items as jobs, in row order."""
        return self._client._pages(Call("GET", f"/v1/batches/{_id(batch)}/jobs", params={"limit": page_size}), Job)

    def events(self, batch: Batch | str):
        """The batch's Server-Sent Events (``progress`` with counts and ETA, then ``done``)."""
        return self._client._events(f"/v1/batches/{_id(batch)}/events")

    def wait(self, batch: Batch | str, timeout: float | None = DEFAULT_WAIT_TIMEOUT_S) -> Batch:
        current = batch if isinstance(batch, Batch) else None
        return self._client._wait(current, self._fetch(batch), Batch, f"/v1/batches/{_id(batch)}/events", timeout)

    def iter_results(self, batch: Batch | str):
        """Finished items in row order as ``ResultLine``, streamed (partial while the batch runs)."""
        call = Call("GET", f"/v1/batches/{_id(batch)}/results", params={"format": "jsonl"},
                    headers={"Accept": "application/x-ndjson"})
        return self._client._records(call, ResultLine)

    def cancel(self, batch: Batch | str) -> Batch:
        return self._client._execute(Call("POST", f"/v1/batches/{_id(batch)}/cancel", parse=parse_model(Batch)))

    def delete(self, batch: Batch | str) -> None:
        return self._client._execute(Call("DELETE", f"/v1/batches/{_id(batch)}", parse=no_content))


class Subjects(_Resource):
    """Per-subject views; a subject is the app's own id for one of its end users."""

    def emotions(self, subject: str, start: datetime | str, end: datetime | str, *, bucket: str | None = None,
                 tz: str | None = None) -> Timeline:
        """The subject's timeline from ``start`` (inclusive) to ``end`` (exclusive) by day, week or month."""
        params = {"from": _iso(start), "to": _iso(end), "bucket": bucket, "tz": tz}
        return self._client._execute(Call("GET", _subject_path(subject, "/emotions"), params=params,
                                          parse=parse_model(Timeline)))

    def insights(self, subject: str, *, window: str | None = None, baseline: str | None = None,
                 end: datetime | str | None = None) -> Insights:
        params = {"window": window, "baseline": baseline, "end": _iso(end)}
        return self._client._execute(Call("GET", _subject_path(subject, "/insights"), params=params,
                                          parse=parse_model(Insights)))

    def correlations(self, subject: str, *, start: datetime | str | None = None,
                     end: datetime | str | None = None) -> Correlations:
        params = {"from": _iso(start), "to": _iso(end)}
        return self._client._execute(Call("GET", _subject_path(subject, "/correlations"), params=params,
                                          parse=parse_model(Correlations)))

    def erase(self, subject: str) -> Erasure:
        """Start erasing everything stored of the subject; ``erasure.wait()`` until it has completed."""
        return self._client._execute(Call("DELETE", _subject_path(subject), parse=self._erasure))

    def erasure(self, erasure: Erasure | str) -> Erasure:
        return self._client._execute(self._erasure_fetch(_id(erasure)))

    def _erasure_fetch(self, erasure_id: str) -> Call:
        return Call("GET", f"/v1/erasures/{erasure_id}", parse=self._erasure)

    def _erasure(self, response) -> Erasure:
        erasure = Erasure.model_validate(response.json())
        erasure._waiter = lambda timeout: self._client._wait(erasure, self._erasure_fetch(erasure.id), Erasure,
                                                             None, timeout)
        return erasure

    def export(self, subject: str):
        """Every stored job of the subject, oldest entry first, as dicts (streamed JSONL)."""
        call = Call("GET", _subject_path(subject, "/export"), headers={"Accept": "application/x-ndjson"})
        return self._client._records(call, None)


class Webhooks(_Resource):
    """Webhook endpoints, their deliveries and the account's signing secret; see ``samo.webhooks.verify``."""

    def create_endpoint(self, url: str, *, events: list[str] | None = None,
                        description: str | None = None) -> Endpoint:
        """The new endpoint, with its ``secret`` (shown only here and on rotation)."""
        body = without_none({"url": url, "events": events, "description": description})
        return self._client._execute(Call("POST", "/v1/webhooks/endpoints", json=body, parse=parse_model(Endpoint)))

    def endpoints(self):
        return self._client._pages(Call("GET", "/v1/webhooks/endpoints"), Endpoint)

    def get_endpoint(self, endpoint: Endpoint | str) -> Endpoint:
        return self._client._execute(Call("GET", f"/v1/webhooks/endpoints/{_id(endpoint)}",
                                          parse=parse_model(Endpoint)))

    def update_endpoint(self, endpoint: Endpoint | str, *, url: str | None = None, events: list[str] | None = None,
                        description: str | None = None, enabled: bool | None = None) -> Endpoint:
        body = without_none({"url": url, "events": events, "description": description, "enabled": enabled})
        return self._client._execute(Call("PATCH", f"/v1/webhooks/endpoints/{_id(endpoint)}", json=body,
                                          parse=parse_model(Endpoint)))

    def delete_endpoint(self, endpoint: Endpoint | str) -> None:
        return self._client._execute(Call("DELETE", f"/v1/webhooks/endpoints/{_id(endpoint)}", parse=no_content))

    def rotate_endpoint_secret(self, endpoint: Endpoint | str) -> Endpoint:
        return self._client._execute(Call("POST", f"/v1/webhooks/endpoints/{_id(endpoint)}/rotate-secret",
                                          parse=parse_model(Endpoint)))

    def deliveries(self, *, endpoint: Endpoint | str | None = None, job: Job | str | None = None,
                   status: str | None = None, page_size: int | None = None):
        params = {"endpoint_id": endpoint and _id(endpoint), "job_id": job and _id(job), "status": status,
                  "limit": page_size}
        return self._client._pages(Call("GET", "/v1/webhooks/deliveries", params=params), Delivery)

    def get_delivery(self, delivery: Delivery | str) -> Delivery:
        return self._client._execute(Call("GET", f"/v1/webhooks/deliveries/{_id(delivery)}",
                                          parse=parse_model(Delivery)))

    def redeliver(self, delivery: Delivery | str) -> Delivery:
        """Send again now, under the same ``webhook-id``, with a fresh retry schedule."""
        return self._client._execute(Call("POST", f"/v1/webhooks/deliveries/{_id(delivery)}/redeliver",
                                          parse=parse_model(Delivery)))

    def signing_secret(self) -> SigningSecret:
        """The secret that signs deliveries to per-job and per-batch webhook URLs."""
        return self._client._execute(Call("GET", "/v1/webhooks/signing-secret", parse=parse_model(SigningSecret)))

    def rotate_signing_secret(self) -> SigningSecret:
        return self._client._execute(Call("POST", "/v1/webhooks/signing-secret/rotate",
                                          parse=parse_model(SigningSecret)))
