"""Queueing Celery work: the one way, by task name, after the transaction commits.

- `after_commit(task_name, *args, what=..., if_not_queued=None)` queues once the current transaction
  commits (at once outside one): a worker never looks for rows that are not there yet, and a change that
  rolls back queues nothing.
- `now(task_name, *args, what=...)` queues at once, for code that already runs after the commit (the
  recovery sweeps).

Tasks are sent by name (`app.send_task`, routed like `.delay()` by CELERY_TASK_ROUTES), so a module that
writes never imports the tasks module that imports it back: no import cycle to break by hand.
Redis failing is expected: while its breaker is open (talia.redis_client) nothing is sent; a send that
fails or is skipped never raises into the code that stored the data, returns False and runs
`if_not_queued`, so the caller can mark the work for a recovery sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from talia.celery import app
from talia.redis_client import breaker

logger = logging.getLogger(__name__)


def now(task_name: str, *args: Any, what: str) -> bool:
    """Send `task_name(*args)` to the broker; False (logged, never raised) when skipped or failed."""
    if breaker.is_open():
        breaker.skipped(f"{what} enqueue")
        return False
    try:
        app.send_task(task_name, args=list(args))
    except Exception as exc:
        if not breaker.record_failure(exc, f"{what} enqueue"):
            logger.exception("Could not enqueue %s %s", what, args)
        return False
    breaker.record_success()
    return True


def after_commit(task_name: str, *args: Any, what: str, if_not_queued: Callable[[], object] | None = None) -> None:
    """Send `task_name(*args)` once the current transaction commits; then `if_not_queued()` if it was not."""

    def send() -> None:
        if not now(task_name, *args, what=what) and if_not_queued is not None:
            if_not_queued()

    transaction.on_commit(send)
