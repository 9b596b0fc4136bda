"""One shared Redis client per URL for the project's own direct Redis use (health, heartbeats, limits),
and the process-local circuit breaker that keeps a hung Redis from slowing every request.

Every command has a deadline (TALIA_REDIS_TIMEOUT_S for connect and for each read) and is tried once:
redis-py would otherwise retry a timed-out command up to ten times, turning a hung Redis into a hung
request.

The breaker (`breaker`, see `RedisBreaker`) guards Redis work that a request can do without: rate limits
and socket caps (they fail open), realtime pushes (clients resume from the database), enqueues of turns,
deliveries and geolocation (the workers' recovery sweep picks them up), and the reply wait's channel-layer
subscription (the database answers). Its invariants:
- It opens on the first Redis timeout or connection error reported by any of those paths and stays open
  for `cooldown_s()`; while open, `is_open()` is true and the optional work is skipped at once, so an
  outage costs a request at most one timeout per cooldown, not one per Redis use.
- After the cooldown, exactly one caller is let through as a probe (the others still see it open): its
  success closes the breaker, its failure opens it for another cooldown.
- It is per process (no Redis needed to read it) and thread-safe; its methods never block, so async code
  calls them directly.
- Anything that must know the truth (/health, the workers' heartbeats) does not consult it.
- One WARNING when it opens after being closed and one INFO when it closes; skipped calls log at DEBUG.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time

import kombu.exceptions
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

# What a hung or stopped Redis raises on each path: redis-py (sync and asyncio), kombu's publish, and
# asyncio/concurrent waits that gave up (the builtin TimeoutError) or sockets that broke (OSError).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    kombu.exceptions.OperationalError,
    TimeoutError,
    ConnectionError,
    OSError,
)


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


def cooldown_s() -> float:
    """How long optional Redis work is skipped after a failure: a couple of timeouts, at least 3 s."""
    return max(3.0, 2 * float(settings.TALIA_REDIS_TIMEOUT_S))


class RedisBreaker:
    """Open (skip optional Redis work) for a cooldown after a Redis outage error; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_until = 0.0  # monotonic; 0 when closed
        self._tripped = False  # opened and not yet closed by a success
        self._tripped_at = 0.0

    def is_open(self) -> bool:
        """True while optional Redis work should be skipped. Past the cooldown, the first caller gets
        False (it is the probe) and the cooldown is renewed for everyone else until it reports back."""
        with self._lock:
            if not self._tripped:
                return False
            now = time.monotonic()
            if now < self._open_until:
                return True
            self._open_until = now + cooldown_s()  # one probe at a time; a silent probe frees it later
            return False

    def record_failure(self, error: BaseException, what: str) -> bool:
        """Open the breaker if `error` says Redis is unreachable or hung; True if it did (or kept it open)."""
        if not isinstance(error, OUTAGE_ERRORS):
            return False
        with self._lock:
            now = time.monotonic()
            first = not self._tripped
            self._tripped = True
            self._open_until = now + cooldown_s()
            if first:
                self._tripped_at = now
        if first:
            logger.warning(
                "Redis failed (%s: %s: %s); skipping rate limits, socket caps, realtime pushes and enqueues "
                "for %.0fs at a time until it answers again",
                what,
                type(error).__name__,
                error,
                cooldown_s(),
            )
        else:
            logger.debug("Redis still failing (%s: %s)", what, type(error).__name__)
        return True

    def record_success(self) -> None:
        """Redis answered: close the breaker."""
        if not self._tripped:  # the common case, without the lock (a stale read only delays closing)
            return
        with self._lock:
            if not self._tripped:
                return
            self._tripped, self._open_until = False, 0.0
            outage = time.monotonic() - self._tripped_at
        logger.info("Redis answers again after %.0fs; optional Redis work resumes", outage)

    def skipped(self, what: str) -> None:
        logger.debug("Skipped %s: the Redis breaker is open", what)

    def reset(self) -> None:
        """Close at once, forgetting any failure (tests, and a process that knows better)."""
        with self._lock:
            self._tripped, self._open_until = False, 0.0


breaker = RedisBreaker()


def _after_fork() -> None:
    # A prefork child may be forked while another thread holds the lock: give it a free one.
    breaker._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)
