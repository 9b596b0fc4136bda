"""The Celery hop of the message path's floor: a task that does nothing but wake the request that sent it.

`celery -A bench.floor_tasks worker -Q bench-floor` runs it, on the benchmark's own broker (TalIA's
settings), with no Django setup and no database: what one queue round trip costs on this stack.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

app = Celery("bench-floor", broker=os.environ["BENCH_FLOOR_BROKER_URL"])
app.conf.update(
    task_serializer="json", accept_content=["json"], task_ignore_result=True, worker_hijack_root_logger=False
)

_redis: redis.Redis | None = None


@app.task(name="bench.floor.wake")
def wake(key: str) -> None:
    """Push one item onto `key`, which the sender waits on with BLPOP."""
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["BENCH_FLOOR_REDIS_URL"])
    _redis.rpush(key, b"1")
    _redis.expire(key, 60)
