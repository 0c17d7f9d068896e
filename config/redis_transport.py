"""kombu's Redis transport, keeping one publishing client per channel instead of building one per command.

kombu sends every command outside its event loop (each publish, for one) through a redis-py
client it constructs on the spot (``Channel.conn_or_acquire``). Since redis-py 5, constructing
a client fills its response-callback table (about 170 entries), which costs more than the
LPUSH it then sends. So the channel keeps one client, made again if the pool is replaced.

That client holds one connection of the pool for its commands (``single_connection_client``,
serialised by redis-py's lock) instead of checking one out per command: a checkout polls the
connection for stray data, and under gevent (the API's gunicorn workers) that poll goes through
gevent's select emulation, which costs about as much CPU as the command itself. Pipelines (a
producer batch of several messages) still check out their own.
Selected by ``config.celery`` for ``redis://`` brokers (other schemes keep kombu's own transports).
"""
from __future__ import annotations

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _sync_client = None

    def _create_client(self, asynchronous: bool = False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = self.Client(**self._sync_client_kwargs())
        return client

    def _sync_client_kwargs(self) -> dict:
        """kombu's own client arguments (the pool, a credential provider if the pool has one), on one connection."""
        kwargs = {"connection_pool": self.pool, "single_connection_client": True}
        credential_provider = self.pool.connection_kwargs.get("credential_provider")
        if credential_provider is not None:
            kwargs["credential_provider"] = credential_provider
        return kwargs


class Transport(kombu_redis.Transport):
    Channel = Channel


TRANSPORT = f"{__name__}:Transport"
