"""The result cache's keys, shared by the workers that fill it and the deletions that empty it.

A key is ``HMAC-SHA256(secret, tenant id ‖ model key ‖ text)`` under a server secret
(``SAMO_RESULT_CACHE_SECRET``, else one derived from ``SAMO_JWT_SECRET``): without the secret
nobody holding the keyspace can test a guessed sentence against it, and one tenant's entries
never answer another's. Keys start with the tenant's id so a tenant's entries can be found.

A job's text is cut into parts (windows, sentences, halves of truncated parts) before it is
looked up, and only the worker knows the cut, so the worker also adds the keys it used for a
job to that job's index set (key names only, no text); deleting a job removes every key in its
index, then the index. Only the standard library and Redis are used: the API imports this.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable

import redis

from config.settings import Settings

KEY_PREFIX = "samo:emotion-result:"
JOB_INDEX_PREFIX = "samo:emotion-result-job:"
_DERIVATION_INFO = b"samo-brain result cache keys v1"
#: Jobs whose entries are removed per pipelined round trip.
FORGET_CHUNK = 500


def cache_secret(settings: Settings) -> bytes | None:
    """The HMAC key, or None when no secret is configured (the cache is then off)."""
    if settings.result_cache_secret:
        return settings.result_cache_secret.encode("utf-8")
    if settings.jwt_secret:
        return hmac.new(settings.jwt_secret.encode("utf-8"), _DERIVATION_INFO, hashlib.sha256).digest()
    return None


def tenant_prefix(tenant_id: uuid.UUID | str) -> str:
    return f"{KEY_PREFIX}{tenant_id}:"


def result_key(secret: bytes, tenant_id: uuid.UUID | str, model_key: str, text: str) -> str:
    message = f"{tenant_id}\0{model_key}\0{text}".encode("utf-8", "surrogatepass")
    return tenant_prefix(tenant_id) + hmac.new(secret, message, hashlib.sha256).hexdigest()


def job_index_key(job_id: uuid.UUID | str) -> str:
    return f"{JOB_INDEX_PREFIX}{job_id}"


def forget_jobs(client: redis.Redis, job_ids: Iterable[uuid.UUID | str]) -> int:
    """Remove the cache entries derived from these jobs and their indexes; returns the entries removed."""
    removed = 0
    ids = list(job_ids)
    for start in range(0, len(ids), FORGET_CHUNK):
        indexes = [job_index_key(job_id) for job_id in ids[start:start + FORGET_CHUNK]]
        with client.pipeline(transaction=False) as pipe:
            for index in indexes:
                pipe.smembers(index)
            members = pipe.execute()
        keys = {key for found in members for key in found}
        with client.pipeline(transaction=False) as pipe:
            if keys:
                pipe.delete(*keys)
            pipe.delete(*indexes)
            results = pipe.execute()
        removed += results[0] if keys else 0
    return removed

