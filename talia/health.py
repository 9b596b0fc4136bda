"""GET /health: is the database reachable, is Redis, is a Celery worker alive."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from talia.celery import workers_key
from talia.redis_client import get_redis

logger = logging.getLogger(__name__)


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("Health check: database unreachable", exc_info=True)
        return False


def check_redis() -> bool:
    try:
        return bool(get_redis().ping())
    except Exception:
        logger.warning("Health check: Redis unreachable", exc_info=True)
        return False


def check_worker() -> bool:
    """A worker counts as alive if it sent a heartbeat within TALIA_WORKER_HEARTBEAT_TTL_S."""
    try:
        since = time.time() - settings.TALIA_WORKER_HEARTBEAT_TTL_S
        return get_redis().zcount(workers_key(), since, "+inf") > 0
    except Exception:
        return False


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    database = check_database()
    redis_ok = check_redis()
    worker = redis_ok and check_worker()
    body = {
        "status": "ok" if database and redis_ok else "error",
        "database": "ok" if database else "down",
        "redis": "ok" if redis_ok else "down",
        # A missing worker delays replies but loses nothing (tasks wait in Redis): not a 503.
        "worker": "ok" if worker else "down",
    }
    return JsonResponse(body, status=200 if database and redis_ok else 503)
