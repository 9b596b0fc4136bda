"""The channel layer: channels-redis, with a connection pool that waits instead of failing, and joins
that cost one round trip.

channels-redis builds each pool with `ConnectionPool.from_url(address, **the host's other keys)`
(channels_redis.utils.create_pool). redis-py 8 caps such a pool at 100 connections and raises
"Too many connections" the moment a 101st command is in flight, so a burst (hundreds of sockets of one
Daphne process connecting, disconnecting or being pushed to at once) crashed consumers with 1011. A
`BlockingConnectionPool` queues those commands for a free connection instead, up to its `timeout`.
The host's keys (timeouts, retry, health checks, `max_connections`, `timeout`) are set in settings.

Sizing for a burst (200 sockets of one process sending at once, each answered by a push; see
talia/tests/test_socket_soak.py and `make bench BENCH_ARGS=sockets`): each push in flight holds one
pooled connection for one round trip (`group_send`: ZRANGE, then one EVAL), each join one
(`group_add` below), and each process holds one more for its blocking read. `max_connections` (200)
therefore covers every socket of a 200-socket burst at once, and the rest wait up to `timeout`
rather than fail. `capacity` (TALIA_CHANNEL_CAPACITY, default 5000) bounds the pushes queued for one
process: a burst of 200 pushes, each fanned out to a few sockets of the same process, stays far below
it. `expiry` (TALIA_CHANNEL_EXPIRY_S, 60 s) is how long a push waits for its process.

`group_add` is channels-redis's ZADD then EXPIRE sent as one pipeline (one round trip, not two), and
`group_add_many` joins several groups in one pipeline: a visitor's socket joins its contact's and its
conversation's group at connect with a single round trip.
"""

from __future__ import annotations

import time
from typing import Any

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class RedisChannelLayer(_RedisChannelLayer):
    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        return BlockingConnectionPool.from_url(host.pop("address"), **host)

    async def group_add(self, group: str, channel: str) -> None:
        await self.group_add_many([group], channel)

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        """Add `channel` to every group in `groups`: one pipelined round trip per Redis shard."""
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        by_shard: dict[int, list[str]] = {}
        for group in dict.fromkeys(groups):
            assert self.require_valid_group_name(group), "Group name not valid"
            by_shard.setdefault(self.consistent_hash(group), []).append(self._group_key(group))
        now = time.time()
        for index, keys in by_shard.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for key in keys:
                # Every member expires before the set does (channels-redis's own rule).
                pipe.zadd(key, {channel: now})
                pipe.expire(key, self.group_expiry)
            await pipe.execute()
