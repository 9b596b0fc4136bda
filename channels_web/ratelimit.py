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
    allowed, period = limit
    window = int(time.time() // period)
    name = f"{settings.REDIS_PREFIX}:rate:{scope}:{key}:{window}"
    if breaker.is_open():
        breaker.skipped("rate limit")
        return None
    try:
        pipe = get_redis().pipeline()
        pipe.incr(name)
        pipe.expire(name, period + 1)
        count, _ = pipe.execute()
    except redis.RedisError as exc:
        # Fail open: a Redis outage must not stop visitors from being heard (messages go to Postgres).
        if not breaker.record_failure(exc, "rate limit"):
            logger.warning("Rate limit check skipped: Redis error", exc_info=True)
        return None
    breaker.record_success()
    if count <= allowed:
        return None
    return max(1, int((window + 1) * period - time.time()) + 1)


def check_visitor(session_id: str | None, ip: str) -> int | None:
    """Apply the per-IP and per-session limits; the longest wait when either is exceeded."""
    waits = [hit("ip", ip or "unknown", settings.TALIA_WEBCHAT_RATE_PER_IP)]
    if session_id:
        waits.append(hit("session", session_id, settings.TALIA_WEBCHAT_RATE_PER_SESSION))
    blocked = [wait for wait in waits if wait is not None]
    return max(blocked) if blocked else None
