"""The channel layer's Redis connections fit its blocking read and survive bursts (real Redis)."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from redis.asyncio import BlockingConnectionPool


@pytest.fixture
def layer():
    return channel_layers.make_backend("default")


def test_the_read_timeout_outlasts_the_blocking_read_and_connects_are_bounded(layer):
    pool = layer.create_pool(0)

    assert isinstance(pool, BlockingConnectionPool)
    assert pool.connection_kwargs["socket_timeout"] >= 2 * RedisChannelLayer.brpop_timeout
    assert 0 < pool.connection_kwargs["socket_connect_timeout"] <= 5
    assert layer.capacity == settings.CHANNEL_LAYERS["default"]["CONFIG"]["capacity"] >= 1000
    assert layer.group_expiry > 86400  # Daphne's own cap on a socket's life


def test_an_idle_receive_outlives_the_blocking_read(layer):
    """Nothing arrives for longer than BZPOPMIN's 5 s: the wait ends by our deadline, not a Redis error."""

    async def idle() -> None:
        channel = await layer.new_channel()
        with pytest.raises(TimeoutError) as raised:
            await asyncio.wait_for(layer.receive(channel), RedisChannelLayer.brpop_timeout + 3)
        assert type(raised.value) is TimeoutError  # the builtin one from wait_for, not redis'
        await layer.close_pools()

    asyncio.run(idle())


def test_a_burst_of_commands_waits_for_connections_instead_of_failing(layer):
    """Hundreds of sockets of one process joining and leaving at once (redis-py's default pool failed
    the 101st command in flight with "Too many connections")."""

    async def burst() -> None:
        channels = [await layer.new_channel() for _ in range(400)]
        await asyncio.gather(*(layer.group_add("burst", channel) for channel in channels))
        await asyncio.gather(*(layer.group_discard("burst", channel) for channel in channels))
        await layer.close_pools()

    asyncio.run(burst())
