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

`group_send` does channels-redis's work in two round trips instead of four, and in one for a group with
no members (most of the pushes a turn sends: the monitor with no supervisor watching, a conversation no
one has open): the group's expired members are dropped and the rest read in one pipeline, and each
member channel's expired messages are dropped inside the same script that queues the push (the same
commands, the same capacity rule, the same order per channel).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

logger = logging.getLogger(__name__)


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

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send `message` to every channel of `group` (channels-redis's semantics, fewer round trips)."""
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        pipe = self.connection(self.consistent_hash(group)).pipeline(transaction=False)
        pipe.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
        pipe.zrange(key, 0, -1)
        _, members = await pipe.execute()
        if not members:
            return
        channel_names = [member.decode("utf8") for member in members]
        by_connection, messages, capacities = self._map_channel_keys_to_connection(channel_names, message)
        for index, channel_keys in by_connection.items():
            now = time.time()
            args = [
                *(messages[channel_key] for channel_key in channel_keys),
                *(capacities[channel_key] for channel_key in channel_keys),
                int(now) - int(self.expiry),
                now,
                self.expiry,
            ]
            over_capacity = await self.connection(index).eval(GROUP_SEND_LUA, len(channel_keys), *channel_keys, *args)
            if over_capacity > 0:
                logger.info("%s of %s channels over capacity in group %s", over_capacity, len(channel_names), group)


# channels-redis's group-send script, preceded for each channel by the removal of its expired messages
# (which channels-redis sends as a pipeline of its own first). ARGV: the messages, the capacities, then
# the expiry cutoff, the current time and the expiry.
GROUP_SEND_LUA = """
local over_capacity = 0
local cutoff = ARGV[#ARGV - 2]
local current_time = ARGV[#ARGV - 1]
local expiry = ARGV[#ARGV]
for i=1,#KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, cutoff)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], current_time, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""
