"""Submitting jobs through the Flask test client or over real HTTP."""
from __future__ import annotations

from pathlib import Path

import requests

EMOTION_JOB = {"type": "emotion", "input": {"text": "Thank you so much!"}}


def submit(client, tenant, body: dict | None = None, **kwargs):
    """POST /v1/jobs through the test client as ``tenant``; ``headers`` add to the tenant's."""
    body = body if body is not None else EMOTION_JOB
    return client.post("/v1/jobs", json=body, headers={**tenant.headers, **kwargs.pop("headers", {})}, **kwargs)


def post_job(base_url: str, headers: dict, text: str, job_type: str = "emotion", options: dict | None = None) -> dict:
    """A text job over HTTP that must be accepted; ``options`` is sent only when given, even empty."""
    body = {"type": job_type, "input": {"text": text}, **({"options": options} if options is not None else {})}
    response = requests.post(f"{base_url}/v1/jobs", json=body, headers=headers, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()


def post_upload(base_url: str, headers: dict, path, job_type: str = "transcribe", **fields) -> dict:
    """A multipart upload over HTTP that must be accepted."""
    with open(path, "rb") as f:
        response = requests.post(f"{base_url}/v1/jobs", data={"type": job_type, **fields},
                                 files={"file": (Path(path).name, f)}, headers=headers, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()
