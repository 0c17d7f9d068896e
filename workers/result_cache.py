"""Emotion results cached in Redis, per tenant, keyed by the model that produced them and the exact text.

The key is an HMAC under a server secret of the tenant, the model's name, version (a digest of
its weights, ``-int8`` when quantised) and maximum length, and the text (``db.result_cache_keys``):
a new model, or the same one run differently, never reads an old model's answers, one tenant
never reads another's, and nobody can test a guessed sentence against the keyspace. Entries
expire after ``result_cache_ttl_s``; each job's keys are indexed under the job, so deleting the
job removes them.

The cache is an optimisation only: while Redis fails, lookups miss and writes are skipped,
and after a failure the cache stands aside for a few seconds instead of paying a connection
timeout on every batch.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence

import redis

from config.settings import Settings
from db.result_cache_keys import cache_secret, job_index_key, result_key

log = logging.getLogger(__name__)

REDIS_BACKOFF_S = 5.0

#: A text as one tenant asked for it.
Lookup = tuple[uuid.UUID, str]

_clients: dict[str, redis.Redis] = {}


def _client(redis_url: str) -> redis.Redis:
    if redis_url not in _clients:
        _clients[redis_url] = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    return _clients[redis_url]


class ResultCache:
    def __init__(self, client: redis.Redis | None, ttl_s: int, model_key: str, secret: bytes | None) -> None:
        self.client = client if secret is not None else None
        self.ttl_s = ttl_s
        self.model_key = model_key
        self.secret = secret
        self._skip_until = 0.0

    @classmethod
    def for_model(cls, settings: Settings, classifier) -> ResultCache:
        model_key = f"{classifier.name}\0{classifier.version}\0{classifier.max_length}"
        client = _client(settings.redis_url) if settings.result_cache_ttl_s > 0 else None
        return cls(client, settings.result_cache_ttl_s, model_key, cache_secret(settings))

    def key(self, lookup: Lookup) -> str:
        tenant_id, text = lookup
        return result_key(self.secret, tenant_id, self.model_key, text)

    def _usable(self) -> bool:
        return self.client is not None and time.monotonic() >= self._skip_until

    def _failed(self, action: str, error: Exception) -> None:
        self._skip_until = time.monotonic() + REDIS_BACKOFF_S
        log.warning("result cache %s failed (%s); cache off for %.0fs", action, type(error).__name__, REDIS_BACKOFF_S)

    def get_many(self, lookups: Sequence[Lookup]) -> list[dict | None]:
        """A stored result per lookup, or None where there is none (or the cache is unavailable)."""
        if not lookups or not self._usable():
            return [None] * len(lookups)
        try:
            found = self.client.mget([self.key(lookup) for lookup in lookups])
        except redis.RedisError as error:
            self._failed("lookup", error)
            return [None] * len(lookups)
        return [json.loads(value) if value is not None else None for value in found]

    def put_many(self, lookups: Sequence[Lookup], results: Sequence[dict]) -> None:
        if not lookups or not self._usable():
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for lookup, result in zip(lookups, results):
                    pipe.set(self.key(lookup), json.dumps(result, separators=(",", ":")), ex=self.ttl_s)
                pipe.execute()
        except redis.RedisError as error:
            self._failed("write", error)

    def index_jobs(self, used: Mapping[uuid.UUID, Iterable[Lookup]]) -> None:
        """Record under each job the keys its texts were looked up or stored under."""
        if not used or not self._usable():
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for job_id, lookups in used.items():
                    keys = {self.key(lookup) for lookup in lookups}
                    if keys:
                        pipe.sadd(job_index_key(job_id), *keys)
                        pipe.expire(job_index_key(job_id), self.ttl_s)
                pipe.execute()
        except redis.RedisError as error:
            self._failed("index", error)


_caches: dict[tuple[str, str], ResultCache] = {}


def result_cache(settings: Settings, classifier) -> ResultCache:
    """The process's cache for this model (its Redis back-off state is kept between batches)."""
    key = (settings.redis_url, f"{classifier.name}\0{classifier.version}")
    if key not in _caches:
        _caches[key] = ResultCache.for_model(settings, classifier)
    return _caches[key]
