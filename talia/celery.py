"""The Celery application: Redis broker, JSON only, late acks for idempotent tasks (see settings).

Workers report alive twice over: the node's hostname in `<prefix>:workers` for /health, and each process
that runs tasks in `<prefix>:worker-processes` (talia.workers), which the recovery sweep reads to hand
back the turns of a process that died. The worker's main process runs that sweep when it starts and on
every heartbeat after, so a killed worker's turns are answered soon after any worker is up again.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "talia.settings")

app = Celery("talia")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


def workers_key() -> str:
    """Sorted set of worker hostnames scored by their last heartbeat."""
    from django.conf import settings

    return f"{settings.REDIS_PREFIX}:workers"


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Records the worker as alive in Redis every few seconds, so /health answers without a broadcast."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        from django.conf import settings

        from talia import workers

        self.interval = max(1.0, settings.TALIA_WORKER_HEARTBEAT_TTL_S / 3)
        self.beat(worker)
        self.tref = worker.timer.call_repeatedly(self.interval, self.beat, (worker,), priority=10)
        # Solo and thread pools run tasks in this process; prefork children start their own keeper.
        workers.start_keeper(on_tick=recover_abandoned_work)

    def beat(self, worker: Any) -> None:
        from talia.redis_client import get_redis

        try:
            get_redis().zadd(workers_key(), {worker.hostname: time.time()})
        except Exception:  # Redis down: /health will say so; the worker keeps going
            logger.warning("Could not record the worker heartbeat", exc_info=True)

    def stop(self, worker: Any) -> None:
        from talia import workers
        from talia.redis_client import get_redis

        workers.stop_keeper()
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        try:
            get_redis().zrem(workers_key(), worker.hostname)
        except Exception:
            logger.warning("Could not clear the worker heartbeat", exc_info=True)

    def terminate(self, worker: Any) -> None:
        # A cold shutdown stops steps through terminate(), which StartStopStep only forwards to `obj`.
        self.stop(worker)


app.steps["worker"].add(WorkerHeartbeat)


def recover_abandoned_work() -> None:
    """Run the recovery sweep in this process (the worker's keeper thread), then let its connection go."""
    import redis
    from django.db import DatabaseError, connection

    from conversations.tasks import recover_abandoned_work as sweep

    try:
        sweep()
    except (redis.RedisError, DatabaseError) as exc:
        # A part is down: /health says which; the next heartbeat tries again.
        logger.warning("Recovery sweep skipped: %s: %s", type(exc).__name__, exc)
    finally:
        connection.close()  # a thread's connection would otherwise stay open between sweeps


@signals.task_prerun.connect
@signals.task_postrun.connect
def give_back_connections(sender: Any = None, **kwargs: Any) -> None:
    """Each task starts and ends with this thread's connections closed, which with the pool means given back
    (or, broken or mid-transaction, discarded): Celery's own per-task closing is off (CELERY_DB_REUSE_MAX).
    Not for an eager task, which runs inside its caller's work (as Celery's fixup also spares it)."""
    from django.db import close_old_connections

    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()


@signals.worker_process_init.connect
def start_child_keeper(**kwargs: Any) -> None:
    """A prefork child beats for itself: it is the process that claims and runs the turn."""
    from talia import workers

    workers.start_keeper()


@signals.worker_process_shutdown.connect
def stop_child_keeper(**kwargs: Any) -> None:
    from talia import workers

    workers.stop_keeper()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def mask_secrets_in_worker_logs(logger: logging.Logger, **kwargs: Any) -> None:
    """Celery replaces the root logger's handlers with its own: give them the same masking filter as LOGGING's."""
    from talia.logmask import MaskSecrets

    for handler in logger.handlers:
        if not any(isinstance(existing, MaskSecrets) for existing in handler.filters):
            handler.addFilter(MaskSecrets())
