"""kombu's Redis transport, keeping one publishing client per channel instead of building one per command.

kombu sends every command outside its event loop (each publish, for one) through a redis-py
client it constructs on the spot (``Channel.conn_or_acquire``). Since redis-py 5, constructing
a client fills its response-callback table (~170 entries): measured 0.43 ms, more than the
LPUSH it then sends. A redis-py client is thread-safe and only wraps the channel's connection
pool, so the channel keeps one, made again if the pool is replaced. Selected by
``config.celery`` for ``redis://`` brokers (other schemes keep kombu's own transports).
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
            client = self._sync_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel


TRANSPORT = f"{__name__}:Transport"
