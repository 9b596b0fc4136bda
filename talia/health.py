"""GET /health: is the database reachable, is Redis, is a Celery worker alive — answered within a deadline.

A hung peer (the connection is accepted, nothing ever comes back) must not hang the health check that
is supposed to report it. So each check runs in a small pool of its own threads, on a connection of its
own that is closed afterwards, and the view waits for them at most TALIA_HEALTH_TIMEOUT_S in total; a
check that has not answered by then counts as down. Connect and read timeouts end the abandoned checks
(the database's connect_timeout, TALIA_REDIS_TIMEOUT_S), and the pool's size bounds how many can be
stuck at once.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from talia.celery import workers_key
from talia.redis_client import get_redis

logger = logging.getLogger(__name__)

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="talia-health")


def check_database() -> bool:
    # A connection of this thread's own, closed at once: pool threads outlive requests, so Django's
    # end-of-request cleanup would never close it.
    conn = connections.create_connection("default")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("Health check: database unreachable", exc_info=True)
        return False
    finally:
        conn.close()


def check_redis() -> tuple[bool, bool]:
    """(Redis answers, a worker sent a heartbeat within TALIA_WORKER_HEARTBEAT_TTL_S)."""
    try:
        client = get_redis()
        client.ping()
    except Exception:
        logger.warning("Health check: Redis unreachable", exc_info=True)
        return False, False
    try:
        since = time.time() - settings.TALIA_WORKER_HEARTBEAT_TTL_S
        return True, client.zcount(workers_key(), since, "+inf") > 0
    except Exception:
        return True, False


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    database_future = _pool.submit(check_database)
    redis_future = _pool.submit(check_redis)
    checks: list[Future[Any]] = [database_future, redis_future]
    _done, pending = wait(checks, timeout=settings.TALIA_HEALTH_TIMEOUT_S)
    for future in pending:
        future.cancel()  # if it is still queued behind stuck checks, it never runs
    database = database_future not in pending and database_future.result()
    redis_ok, worker = (False, False) if redis_future in pending else redis_future.result()
    if pending:
        late = [name for name, f in (("database", database_future), ("Redis", redis_future)) if f in pending]
        logger.warning(
            "Health check: no answer from %s within %ss", " and ".join(late), settings.TALIA_HEALTH_TIMEOUT_S
        )
    body = {
        "status": "ok" if database and redis_ok else "error",
        "database": "ok" if database else "down",
        "redis": "ok" if redis_ok else "down",
        # A missing worker delays replies but loses nothing (tasks wait in Redis): not a 503.
        "worker": "ok" if worker else "down",
    }
    return JsonResponse(body, status=200 if database and redis_ok else 503)
