"""The channel layer: channels-redis, with a connection pool that waits instead of failing.

channels-redis builds each pool with `ConnectionPool.from_url(address, **the host's other keys)`
(channels_redis.utils.create_pool). redis-py 8 caps such a pool at 100 connections and raises
"Too many connections" the moment a 101st command is in flight, so a burst (hundreds of sockets of one
Daphne process connecting, disconnecting or being pushed to at once) crashed consumers with 1011. A
`BlockingConnectionPool` queues those commands for a free connection instead, up to its `timeout`.
The host's keys (timeouts, retry, health checks, `max_connections`, `timeout`) are set in settings.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class RedisChannelLayer(_RedisChannelLayer):
    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        return BlockingConnectionPool.from_url(host.pop("address"), **host)
