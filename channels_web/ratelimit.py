"""Fixed-window rate limits in Redis, shared by every web process (REST and WebSocket alike).

They fail open: while Redis is down or hung (talia.redis_client.breaker open) nothing is counted and
every request is allowed, without waiting on Redis.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings

from talia.redis_client import breaker, get_redis

logger = logging.getLogger("talia.webchat")


def hit(scope: str, key: str, limit: tuple[int, int]) -> int | None:
    """Count one request for `key`; None when allowed, else seconds until the window resets."""
    return hits([(scope, key, limit)])


def hits(counted: list[tuple[str, str, tuple[int, int]]]) -> int | None:
    """Count one request against each (scope, key, limit) in one pipelined round trip; None when every
    one allows it, else the longest wait in seconds until a window resets."""
    if breaker.is_open():
        breaker.skipped("rate limit")
        return None
    now = time.time()
    windows = [(int(now // period), period) for _, _, (_, period) in counted]
    try:
        pipe = get_redis().pipeline()
        for (scope, key, _), (window, period) in zip(counted, windows, strict=True):
            name = f"{settings.REDIS_PREFIX}:rate:{scope}:{key}:{window}"
            pipe.incr(name)
            pipe.expire(name, period + 1)
        replies = pipe.execute()
    except redis.RedisError as exc:
        # Fail open: a Redis outage must not stop visitors from being heard (messages go to Postgres).
        if not breaker.record_failure(exc, "rate limit"):
            logger.warning("Rate limit check skipped: Redis error", exc_info=True)
        return None
    breaker.record_success()
    waits = [
        max(1, int((window + 1) * period - time.time()) + 1)
        for count, (_, _, (allowed, _)), (window, period) in zip(replies[::2], counted, windows, strict=True)
        if count > allowed
    ]
    return max(waits) if waits else None


def check_visitor(session_id: str | None, ip: str) -> int | None:
    """Apply the per-IP and per-session limits (one round trip); the longest wait when either is exceeded."""
    counted = [("ip", ip or "unknown", settings.TALIA_WEBCHAT_RATE_PER_IP)]
    if session_id:
        counted.append(("session", session_id, settings.TALIA_WEBCHAT_RATE_PER_SESSION))
    return hits(counted)
