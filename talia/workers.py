"""Which worker processes are alive, so work a dead one held can be taken back at once.

Every process that runs tasks has an identity, `<host>:<pid>:<boot>`: `boot` is random per process
start, so a pid reused after a restart is never mistaken for the process that died. Work a process
claims (an AssistantRun, a delivery attempt) records that identity.

A process counts as alive while it keeps its entry in the Redis sorted set `<prefix>:worker-processes`
fresh (scored by the time of its last heartbeat, newer than TALIA_WORKER_HEARTBEAT_TTL_S). The beat
comes from a daemon thread of that process, not from Celery's event loop: a prefork child busy with a
long turn, or a solo worker blocked in one, still beats, and a process killed with `kill -9` stops
beating with everything else in it. The worker's parent process also runs `on_tick` on every beat (the
recovery sweep); see talia/celery.py for where these threads are started.

Unknown is not dead: when Redis cannot be read, `alive()` raises and callers release nothing.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings

from talia.redis_client import get_redis

logger = logging.getLogger(__name__)

# Entries not refreshed for this long belong to processes long gone: pruned so the set stays small.
PRUNE_AFTER_S = 3600

_identity: tuple[int, str] | None = None
_keeper: ProcessKeeper | None = None
_lock = threading.Lock()


def processes_key() -> str:
    """Sorted set of worker process identities scored by their last heartbeat."""
    return f"{settings.REDIS_PREFIX}:worker-processes"


def identity() -> str:
    """This process's identity; a forked child gets its own (the pid differs from the cached one)."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        _identity = (pid, f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}")
    return _identity[1]


def heartbeat_interval() -> float:
    return max(1.0, settings.TALIA_WORKER_HEARTBEAT_TTL_S / 3)


def beat(member: str) -> None:
    """Record `member` as alive now (and drop entries of processes gone for an hour)."""
    now = time.time()
    pipe = get_redis().pipeline(transaction=False)
    pipe.zadd(processes_key(), {member: now})
    pipe.zremrangebyscore(processes_key(), "-inf", now - PRUNE_AFTER_S)
    pipe.execute()


def forget(member: str) -> None:
    get_redis().zrem(processes_key(), member)


def alive(members: Iterable[str]) -> set[str]:
    """Those of `members` whose heartbeat is fresh. Raises redis.RedisError when Redis cannot say."""
    members = list(dict.fromkeys(members))
    if not members:
        return set()
    scores = get_redis().zmscore(processes_key(), members)
    since = time.time() - settings.TALIA_WORKER_HEARTBEAT_TTL_S
    return {member for member, score in zip(members, scores, strict=True) if score is not None and score >= since}


class ProcessKeeper(threading.Thread):
    """Beats this process's identity every TTL/3 seconds and then calls `on_tick`, until stopped."""

    def __init__(self, on_tick: Callable[[], object] | None = None) -> None:
        super().__init__(name="talia-worker-keeper", daemon=True)
        self.member = identity()
        self.on_tick = on_tick
        self.stopping = threading.Event()

    def beat_once(self) -> None:
        try:
            beat(self.member)
        except Exception:  # Redis down: work this process holds is kept, since nobody can call it dead
            logger.warning("Could not record the heartbeat of worker process %s", self.member, exc_info=True)

    def run(self) -> None:
        while True:
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception:
                    logger.exception("Worker keeper task failed; trying again in %.0fs", heartbeat_interval())
            if self.stopping.wait(heartbeat_interval()):
                return
            self.beat_once()

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)
        try:
            forget(self.member)
        except Exception:
            logger.warning("Could not clear the heartbeat of worker process %s", self.member, exc_info=True)


def start_keeper(on_tick: Callable[[], object] | None = None) -> ProcessKeeper:
    """Start this process's keeper (once per process). The first beat is written before this returns,
    so the process is known to be alive before it claims anything."""
    global _keeper
    with _lock:
        if _keeper is not None and _keeper.member == identity() and _keeper.is_alive():
            # A solo or threads pool starts the task keeper (worker_process_init) before the worker's
            # own step asks for one with the recovery sweep: the one keeper of the process runs it.
            if on_tick is not None:
                _keeper.on_tick = on_tick
            return _keeper
        _keeper = ProcessKeeper(on_tick)
        _keeper.beat_once()
        _keeper.start()
        return _keeper


def stop_keeper() -> None:
    global _keeper
    with _lock:
        keeper, _keeper = _keeper, None
    if keeper is not None and keeper.member == identity():
        keeper.stop()
