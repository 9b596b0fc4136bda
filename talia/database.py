"""Pooled Postgres connections that cannot hang: a read deadline on every round trip, and fork safety.

psycopg's pool (Django 5.2, `DATABASES["default"]["OPTIONS"]["pool"]`) keeps each process's connections
open. libpq has no read deadline, so a Postgres that accepts and then never answers (a frozen server, a
stuck proxy; the kernel still acknowledges every byte, so TCP keepalives and `tcp_user_timeout` see a
healthy peer) would hold a pooled connection's next statement forever, and with it the request, the
socket's database call or the task. Without the pool every use connects anew and libpq's connect
deadline bounds even that; with it, `DeadlineConnection` restores the bound:

- every wait for Postgres's answer (a statement, a commit, the pool's health check on borrow) ends
  after `TALIA_DATABASE_READ_TIMEOUT_S`: the connection is closed (its state is unknown; the pool
  discards it) and the caller gets an `OperationalError`, which the request turns into a 503
  `database_unavailable` (talia/errors.py) and a task into a retry;
- the pool hands out a connection only after an empty query on it came back (Django's
  `CONN_HEALTH_CHECKS` with a pool), so a dead or hung pooled connection costs one bounded check, not
  a failed request;
- a forked child (a Celery prefork worker process) never uses a connection or pool inherited from its
  parent: `forget_inherited_connections` drops them in the child without closing them, because closing
  would tell Postgres to end the parent's sessions on the same sockets; and no child can be forked
  halfway through psycopg_pool's first import (imported with the settings, below).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, TypeVar

import psycopg
import psycopg_pool  # noqa: F401  (see below)
from psycopg import errors as pg_errors
from psycopg.abc import PQGen

# psycopg_pool is imported here, with the settings, in the main thread before any other starts, not by
# Django on a first pooled connection: a Celery prefork child forked while another thread of its parent
# (the worker's recovery sweep) was importing it would wait for that import's lock forever.

RV = TypeVar("RV")

# What a forked child inherited and must never use nor close (closing sends Postgres a Terminate on a
# socket the parent still uses); kept referenced so garbage collection never closes it either.
_inherited: list[Any] = []


class DeadlineConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends after `read_timeout_s` (0: never).

    The deadline is per round trip (one statement's answer), set once per process from settings by
    `pool_options`. A connection that missed it is closed at once: the server may still be running the
    statement, and nothing that comes later on this socket could be trusted.
    """

    read_timeout_s: ClassVar[float] = 0.0

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        if timeout is None and self.read_timeout_s > 0:
            timeout = self.read_timeout_s
        try:
            return super().wait(gen, interval=interval, timeout=timeout)
        except pg_errors._WaitTimeout as timed_out:  # psycopg's own deadline signal (3.2+)
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"Postgres did not answer within {timeout:g} s (TALIA_DATABASE_READ_TIMEOUT_S); connection closed"
            ) from timed_out


def pool_options(*, max_size: int, timeout_s: float, read_timeout_s: float) -> dict[str, Any]:
    """psycopg_pool.ConnectionPool arguments for Django's `OPTIONS["pool"]` (Django adds kwargs, configure, check).

    `timeout_s` bounds the wait for a free connection (a stopped Postgres: PoolTimeout, a 503).
    Connections are replaced after an hour and closed after ten idle minutes (psycopg_pool's defaults,
    stated here so they are on record).
    """
    DeadlineConnection.read_timeout_s = read_timeout_s
    return {
        "min_size": 1,
        "max_size": max_size,
        "timeout": timeout_s,
        "max_lifetime": 3600.0,
        "max_idle": 600.0,
        "connection_class": DeadlineConnection,
    }


def tcp_options(read_timeout_s: float) -> dict[str, Any]:
    """libpq keepalive settings for TCP connections (ignored on Unix sockets).

    These end a connection whose peer vanished (no acknowledgement at all: a partition, a dead host)
    even while it is idle in the pool; a server that still acknowledges but never answers is the read
    deadline's job.
    """
    options: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
    if read_timeout_s > 0:
        options["tcp_user_timeout"] = int(read_timeout_s * 1000)
    return options


def forget_inherited_connections() -> None:
    """In a forked child: drop the parent's pools and open connections without closing them (see module doc)."""
    from django.db import connections
    from django.db.backends.postgresql.base import DatabaseWrapper

    pools = DatabaseWrapper._connection_pools  # type: ignore[attr-defined]
    _inherited.extend(pools.values())
    pools.clear()
    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is not None:
            _inherited.append(wrapper.connection)
            wrapper.connection = None


def this_process_pool(alias: str = "default") -> Any:
    """The psycopg pool of `alias` in this process, or None (pool off, or not opened by a first use yet)."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    return DatabaseWrapper._connection_pools.get(alias)  # type: ignore[attr-defined]


def reconnect(alias: str = "default") -> None:
    """Close `alias`'s connection and this process's pool for it: the next use connects with its settings as
    they are then (tests that point the connection at a proxy or a dead address)."""
    from django.db import connections

    wrapper = connections[alias]
    wrapper.close()
    close_pool = getattr(wrapper, "close_pool", None)  # Django 5.1+, PostgreSQL only
    if close_pool is not None:
        close_pool()


def install_fork_guard() -> None:
    """Run `forget_inherited_connections` in every child forked from this process (idempotent)."""
    global _guard_installed
    if not _guard_installed:
        os.register_at_fork(after_in_child=forget_inherited_connections)
        _guard_installed = True


_guard_installed = False
