"""Recently verified API keys, per API process, so that a request does not need the database to authenticate.

An entry maps a credential (the digest of an API key, or the key id behind a JWT) to the key's
record and tier for ``SAMO_AUTH_CACHE_TTL_S`` seconds (0 turns the cache off). Changes to keys
must not wait for that long, so every change that takes access away (revocation, narrower
scopes, another tier) is announced by bumping a counter in Redis, the *key epoch*
(:func:`announce_key_change`, called by :func:`revoke_key` and the CLI). Each request already
runs one Redis script for its rate limit; that script also reads the epoch
(``api.auth.ratelimit``), and a process that sees a new epoch drops its entries and authenticates the
request again from the database. While Redis is unreachable, entries still expire after the TTL.
A change made by editing the database by hand is seen within the TTL.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from config.settings import Settings

log = logging.getLogger(__name__)

EPOCH_KEY = "samo:auth:key-epoch"
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class CachedKey:
    record: Any  # api.auth.principal.KeyRecord
    tier: str
    expires_at: float


class AuthCache:
    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.epoch: str | None = None
        self._entries: dict[tuple[str, str], CachedKey] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def get(self, subject: tuple[str, str]) -> CachedKey | None:
        entry = self._entries.get(subject)
        if entry is None or entry.expires_at < time.monotonic():
            return None
        return entry

    def put(self, subject: tuple[str, str], record, tier: str, epoch_before_lookup: str | None) -> None:
        """Keep a record read from the database, unless the epoch moved while it was being read."""
        if not self.enabled:
            return
        with self._lock:
            if self.epoch != epoch_before_lookup:
                return
            if len(self._entries) >= self.max_entries:
                self._drop_expired_or_all()
            self._entries[subject] = CachedKey(record, tier, time.monotonic() + self.ttl_s)

    def observe_epoch(self, epoch: str | None) -> bool:
        """Note the epoch Redis holds; True (and every entry dropped) when keys changed since the last one seen."""
        if epoch == self.epoch:
            return False
        with self._lock:
            changed = self.epoch is not None or bool(self._entries)
            self.epoch = epoch
            self._entries.clear()
        return changed

    def _drop_expired_or_all(self) -> None:
        now = time.monotonic()
        self._entries = {subject: entry for subject, entry in self._entries.items() if entry.expires_at >= now}
        if len(self._entries) >= self.max_entries:
            self._entries.clear()


def announce_key_change(redis_url: str) -> bool:
    """Tell every API process to forget the keys it verified; False (logged) if Redis is unreachable."""
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        with client:
            client.incr(EPOCH_KEY)
    except redis.RedisError:
        log.warning("could not announce an API key change; API processes see it within their cache TTL",
                    exc_info=True)
        return False
    return True


def revoke_key(settings: Settings, prefix: str):
    """Revoke the key with ``prefix`` (its tokens with it) and announce it; the record, or None if unknown."""
    from db.api_keys import revoke_api_key
    from db.session import session_scope

    with session_scope(settings.database_url) as session:
        record = revoke_api_key(session, prefix)
    if record is not None:
        announce_key_change(settings.redis_url)
    return record
