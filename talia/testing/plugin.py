"""pytest plugin (loaded with `-p talia.testing.plugin`): the real stack for every test run.

Before Django reads its settings, start a throwaway Postgres with pgvector (or use TEST_DATABASE_URL)
and a throwaway Redis (or use REDIS_URL), so tests talk to the same kind of servers production does.
Also provides the fixtures shared across apps: a real Celery worker and channel-layer listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from talia.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from talia.testing.fake_openai import FakeOpenAI, fake_openai

# Browser fixtures (daphne_server, live_system, browser, page...) live in their own module.
pytest_plugins = ["talia.testing.browser"]

__all__ = ["fake_openai", "model_engine"]

_state: dict[str, Any] = {"servers": []}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: Any, args: list[str]) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="talia-test-"))
    _state["scratch"] = scratch
    os.environ["DJANGO_SETTINGS_MODULE"] = "talia.settings"
    os.environ["TALIA_VAR_DIR"] = str(scratch / "var")
    (scratch / "var" / "static").mkdir(parents=True)  # STATIC_ROOT: whitenoise warns when it is missing
    os.environ["TALIA_LOG_DIR"] = str(scratch / "log")
    os.environ["DEBUG"] = "false"
    # DEBUG off makes these required (talia/settings.py); the test client and live servers are local.
    os.environ["ALLOWED_HOSTS"] = "localhost,127.0.0.1,[::1]"
    # Plain static names: no test depends on collectstatic having run (production uses the manifest).
    os.environ["TALIA_STATIC_MANIFEST"] = "false"
    # Its own Redis namespace: a run against a shared REDIS_URL never touches another's queue or keys.
    os.environ["TALIA_REDIS_PREFIX"] = "talia-test-" + secrets.token_hex(4)
    os.environ.setdefault("SECRET_KEY", "insecure-test-key-" + secrets.token_hex(16))
    # The offline engine unless a test points a model engine at the fake OpenAI server; never a real key.
    for name in ("OPENAI_API_KEY", "TALIA_OPENAI_API_KEY", "OPENAI_BASE_URL"):
        os.environ.pop(name, None)
    os.environ["TALIA_LLM_ENGINE"] = "offline"
    # No connection pool in this process: async tests borrow connections in contexts that end without
    # Django's request cycle closing them, which would keep one pooled connection per test (the pool's
    # size caps them). Servers and workers started by tests run with the default pool (server_env);
    # talia/tests/test_database_pool.py pools this process's connection for its own tests.
    os.environ["TALIA_DATABASE_POOL"] = "false"
    if os.environ.get("TEST_DATABASE_URL"):
        os.environ["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
    else:
        postgres = EmbeddedPostgres(scratch / "postgres", delete_on_stop=True)
        os.environ["DATABASE_URL"] = postgres.start()
        _state["servers"].append(postgres)
    if not os.environ.get("REDIS_URL"):
        redis_server = EmbeddedRedis(scratch / "redis", delete_on_stop=True)
        os.environ["REDIS_URL"] = redis_server.start()
        _state["servers"].append(redis_server)
    # Before pytest-django sets Django up: the test-only app that plugs in fake channels.
    from django.conf import settings

    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "talia.testing.fake_channels"]


def pytest_unconfigure(config: pytest.Config) -> None:
    while _state["servers"]:
        _state["servers"].pop().stop()
    if "scratch" in _state:
        shutil.rmtree(_state.pop("scratch"), ignore_errors=True)


def task_queues() -> list[str]:
    """Every queue tasks are routed to: turns (the default), deliveries, ingest and analysis."""
    from django.conf import settings

    return list(settings.TALIA_QUEUES.values())


@contextlib.contextmanager
def running_worker(queues: list[str] | None = None, name: str = "worker", event_loop: bool = True) -> Iterator[Any]:
    """A real Celery worker (in a thread of this process) consuming `queues` (all of them by default)
    from the real Redis broker.

    Two workers with different queues run as production does; the second needs `event_loop=False`,
    because kombu's event loop is one per process and two workers on it steal each other's polling.
    """
    from celery.contrib.testing.worker import start_worker

    from talia.celery import app

    with start_worker(
        app,
        pool="solo",
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
        queues=queues or task_queues(),
        hostname=f"{name}-{secrets.token_hex(3)}@test",
        use_eventloop=event_loop,
    ) as worker:
        yield worker


def purge_task_queue() -> None:
    """Drop every queued task, as a Redis outage between commit and enqueue would."""
    from talia.celery import app

    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        for queue in task_queues():
            channel.queue_purge(queue)


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[Any]:
    purge_task_queue()  # tasks left by earlier tests point at rows that no longer exist
    with running_worker() as worker:
        yield worker


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy and return it; fail the test when it never is.

    Used to wait for work another process or thread does (a Celery task, a push); it bounds the wait,
    it does not measure speed.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


class GroupListener:
    """Joins real channel-layer groups and collects what is pushed to them.

    It has a layer instance and an event loop of its own: channels_redis binds a channel's receive
    buffer to the loop that first used it.
    """

    def __init__(self, *groups: str) -> None:
        from channels.layers import channel_layers

        self.loop = asyncio.new_event_loop()
        self.layer = channel_layers.make_backend("default")
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        self.groups = groups
        for group in groups:
            self.loop.run_until_complete(self.layer.group_add(group, self.channel))

    def receive(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next event, or None if nothing arrives within `timeout` seconds."""

        async def next_event() -> dict[str, Any] | None:
            try:
                return await asyncio.wait_for(self.layer.receive(self.channel), timeout)
            except TimeoutError:
                return None

        return self.loop.run_until_complete(next_event())

    def close(self) -> None:
        for group in self.groups:
            self.loop.run_until_complete(self.layer.group_discard(group, self.channel))
        self.loop.run_until_complete(self.layer.close_pools())
        self.loop.close()


@pytest.fixture
def listen() -> Iterator[Callable[..., GroupListener]]:
    listeners: list[GroupListener] = []

    def make(*groups: str) -> GroupListener:
        listener = GroupListener(*groups)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()


@pytest.fixture(params=["openai"])
def model_engine(request: pytest.FixtureRequest, fake_openai: FakeOpenAI, settings: Any) -> FakeOpenAI:
    """Point the assistant at the fake OpenAI server with a model engine (`openai` unless parametrized)."""
    settings.TALIA_LLM_ENGINE = request.param
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = fake_openai.base_url
    return fake_openai
