"""GET /health: is the database reachable, is Redis, is a Celery worker alive — answered within a deadline.

Beside it, for orchestrators and load balancers: GET /health/live (the process answers; no I/O at all, so
a database outage never gets a healthy web process restarted) and GET /health/ready (the database and
Redis answer and every migration this code knows is applied; 503 naming what is wrong otherwise, so a
process is taken out of rotation instead of failing requests).

A hung peer (the connection is accepted, nothing ever comes back) must not hang the health check that
is supposed to report it. So each check runs in a small pool of its own threads, on a connection of its
own that is closed afterwards, and the view waits for them at most TALIA_HEALTH_TIMEOUT_S in total; a
check that has not answered by then counts as down. Connect and read timeouts end the abandoned checks
(the database's connect_timeout, TALIA_REDIS_TIMEOUT_S), and the pool's size bounds how many can be
stuck at once.
"""

from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
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


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """The process is up and serving: nothing is checked, nothing is connected to."""
    return JsonResponse({"status": "ok"})


@functools.cache
def _known_migrations() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """The migrations on disk (app, name), each with the ones it replaces (a squash); read once per
    process, as the code cannot change under it."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    return {key: list(node.replaces or []) for key, node in graph.nodes.items()}


def unapplied_migrations() -> list[str] | None:
    """`app.name` of every migration this code has and the database has not applied (None: unreachable)."""
    conn = connections.create_connection("default")
    try:
        applied = set(MigrationRecorder(conn).applied_migrations())
    except Exception:
        logger.warning("Readiness check: could not read the applied migrations", exc_info=True)
        return None
    finally:
        conn.close()
    missing = [
        key
        for key, replaces in _known_migrations().items()
        if key not in applied and not (replaces and all(r in applied for r in replaces))
    ]
    return sorted(f"{app}.{name}" for app, name in missing)


def check_redis_answers() -> bool:
    try:
        get_redis().ping()
        return True
    except Exception:
        logger.warning("Readiness check: Redis unreachable", exc_info=True)
        return False


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Whether this process can serve: database and Redis reachable, no migration left to apply.

    Same deadline as /health: a check that has not answered by then counts as down. A missing worker does
    not make a web process unready (work waits in Redis).
    """
    futures: dict[str, Future[Any]] = {
        "database": _pool.submit(check_database),
        "redis": _pool.submit(check_redis_answers),
        "migrations": _pool.submit(unapplied_migrations),
    }
    _done, pending = wait(futures.values(), timeout=settings.TALIA_HEALTH_TIMEOUT_S)
    for future in pending:
        future.cancel()

    def result(name: str) -> Any:
        future = futures[name]
        return None if future in pending else future.result()

    database, redis_ok, unapplied = bool(result("database")), bool(result("redis")), result("migrations")
    body: dict[str, Any] = {
        "database": "ok" if database else "down",
        "redis": "ok" if redis_ok else "down",
        "migrations": "unknown" if unapplied is None else ("ok" if not unapplied else "unapplied"),
    }
    problems = [name for name, value in body.items() if value != "ok"]
    if unapplied:
        body["unapplied"] = unapplied
    if problems:
        logger.warning("Readiness check: not ready (%s)", ", ".join(problems))
        return JsonResponse({"status": "error", "problems": problems, **body}, status=503)
    return JsonResponse({"status": "ok", **body})
