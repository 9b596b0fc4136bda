"""One shared Redis client per URL for the project's own direct Redis use (health, heartbeats, limits).

Every command has a deadline (TALIA_REDIS_TIMEOUT_S for connect and for each read) and is tried once:
redis-py would otherwise retry a timed-out command up to ten times, turning a hung Redis into a hung
request.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry


@functools.cache
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


def get_redis() -> redis.Redis:
    return _client(settings.REDIS_URL, settings.TALIA_REDIS_TIMEOUT_S)
