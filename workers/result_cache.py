"""Emotion results cached in Redis, keyed by the model that produced them and the exact text.

The key hashes the model's name, version (a digest of its weights, ``-int8`` when quantised)
and maximum length with the text, so a new model, or the same one run differently, never
reads an old model's answers: it simply misses. Entries expire after ``result_cache_ttl_s``.

The cache is an optimisation only: while Redis fails, lookups miss and writes are skipped,
and after a failure the cache stands aside for a few seconds instead of paying a connection
timeout on every batch.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence

import redis

from config.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "samo:emotion-result:"
REDIS_BACKOFF_S = 5.0

_clients: dict[str, redis.Redis] = {}


def _client(redis_url: str) -> redis.Redis:
    if redis_url not in _clients:
        _clients[redis_url] = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    return _clients[redis_url]


class ResultCache:
    def __init__(self, client: redis.Redis | None, ttl_s: int, model_key: str) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.model_key = model_key
        self._skip_until = 0.0

    @classmethod
    def for_model(cls, settings: Settings, classifier) -> ResultCache:
        model_key = f"{classifier.name}\0{classifier.version}\0{classifier.max_length}"
        client = _client(settings.redis_url) if settings.result_cache_ttl_s > 0 else None
        return cls(client, settings.result_cache_ttl_s, model_key)

    def key(self, text: str) -> str:
        digest = hashlib.sha256(f"{self.model_key}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()
        return KEY_PREFIX + digest

    def _usable(self) -> bool:
        return self.client is not None and time.monotonic() >= self._skip_until

    def _failed(self, action: str, error: Exception) -> None:
        self._skip_until = time.monotonic() + REDIS_BACKOFF_S
        log.warning("result cache %s failed (%s); cache off for %.0fs", action, type(error).__name__, REDIS_BACKOFF_S)

    def get_many(self, texts: Sequence[str]) -> list[dict | None]:
        """A stored result per text, or None where there is none (or the cache is unavailable)."""
        if not texts or not self._usable():
            return [None] * len(texts)
        try:
            found = self.client.mget([self.key(text) for text in texts])
        except redis.RedisError as error:
            self._failed("lookup", error)
            return [None] * len(texts)
        return [json.loads(value) if value is not None else None for value in found]

    def put_many(self, texts: Sequence[str], results: Sequence[dict]) -> None:
        if not texts or not self._usable():
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for text, result in zip(texts, results):
                    pipe.set(self.key(text), json.dumps(result, separators=(",", ":")), ex=self.ttl_s)
                pipe.execute()
        except redis.RedisError as error:
            self._failed("write", error)


_caches: dict[tuple[str, str], ResultCache] = {}


def result_cache(settings: Settings, classifier) -> ResultCache:
    """The process's cache for this model (its Redis back-off state is kept between batches)."""
    key = (settings.redis_url, f"{classifier.name}\0{classifier.version}")
    if key not in _caches:
        _caches[key] = ResultCache.for_model(settings, classifier)
    return _caches[key]
