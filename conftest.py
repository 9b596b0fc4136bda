"""Session-wide test wiring that must live in a root conftest (it overrides pytest-django fixtures)."""

import psycopg
import pytest
from django.db import connection


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # noqa: ANN001 (pytest fixtures)
    """Before the test database is dropped, end sessions that threads of the suite left open.

    Channels' database_sync_to_async and the in-process Celery worker keep a connection per thread;
    Postgres refuses to drop a database that is still in use.
    """
    yield
    with django_db_blocker.unblock():
        params = connection.settings_dict
        name = params["NAME"]
        conninfo = {"dbname": "postgres", "user": params["USER"], "host": params["HOST"] or None}
        if params["PORT"]:
            conninfo["port"] = params["PORT"]
        if params["PASSWORD"]:
            conninfo["password"] = params["PASSWORD"]
        with psycopg.connect(autocommit=True, **conninfo) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )


@pytest.fixture(autouse=True)
def nobody_online():
    """Agent presence lives in Redis, which outlives a test: every test starts with no console open."""
    from conversations.console import presence
    from talia.redis_client import get_redis

    get_redis().delete(presence._key())


@pytest.fixture(autouse=True)
def fresh_abuse_limits():
    """Every test starts with empty rate-limit windows and socket slots.

    Every test client is 127.0.0.1, and the limits are counted in Redis per IP for a minute: one test's
    traffic (the fuzz corpus, a soak) would otherwise count against the tests that run after it.
    """
    from django.conf import settings

    from talia.redis_client import get_redis

    client = get_redis()
    for pattern in (f"{settings.REDIS_PREFIX}:rate:*", f"{settings.REDIS_PREFIX}:sockets:*"):
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Every test gets its own instance of the channel layer.

    Channels keeps one layer per process, and channels-redis binds its receive lock to the event loop of
    the receive in progress. pytest-asyncio gives each test a loop of its own, so a test that ends with a
    receive still pending (a socket it did not disconnect, a failed assertion) would leave every later
    test's receives failing with "bound to a different event loop". Production has one loop per process.
    """
    yield
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)


@pytest.fixture(autouse=True)
def redis_breaker_closed():
    """The Redis breaker is per process: a test that trips it must not make the next one skip Redis work."""
    from talia.redis_client import breaker

    breaker.reset()
    yield breaker
    breaker.reset()


@pytest.fixture(autouse=True)
def no_cached_profile():
    """The assistant profile is cached in Redis, which outlives a test's rolled-back rows."""
    from django.core.cache import cache

    from conversations.profile import CACHE_KEY

    cache.delete(CACHE_KEY)
