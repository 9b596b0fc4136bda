"""GET /health against the real database, Redis and Celery worker, and with each of them down."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test import override_settings

from talia.database import reconnect
from talia.runtime.embedded import EmbeddedRedis
from talia.testing.faults import database_unreachable
from talia.testing.plugin import wait_for


@pytest.fixture
def spare_redis(tmp_path_factory):
    """A Redis of our own that the test can stop without disturbing the rest of the suite."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("r"), delete_on_stop=True)
    url = server.start()
    yield server, url
    server.stop()


def test_everything_up_but_no_worker(client, db):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "worker": "down"}
    assert "no-cache" in response["Cache-Control"]


def test_worker_heartbeat_is_reported(client, celery_worker):
    assert client.get("/health").json()["worker"] == "ok"


def test_redis_down_is_a_503_naming_redis(client, db, spare_redis):
    server, url = spare_redis
    with override_settings(REDIS_URL=url):
        assert client.get("/health").status_code == 200
        server.shutdown()
        response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "redis": "down", "worker": "down"}


@pytest.mark.django_db(transaction=True)
def test_database_down_is_a_503_naming_the_database(client):
    with database_unreachable():
        response = client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "down"
    assert body["redis"] == "ok"
    assert body["status"] == "error"


def test_only_get_is_allowed(client, db):
    assert client.post("/health").status_code == 405


# --- Hung peers: the connection is accepted and nothing ever comes back ------------------------------


@pytest.fixture
def redis_proxy(settings):
    """The session's Redis behind a proxy the test can make hang."""
    from talia.testing.faults import FaultProxy

    with FaultProxy(unix_path=settings.REDIS_URL.removeprefix("unix://").split("?")[0]) as proxy:
        yield proxy


@pytest.fixture
def database_proxy():
    """The test database behind a proxy the test can make hang; the default connection goes through it
    (the connection pool is rebuilt for each address)."""
    from talia.testing.faults import FaultProxy

    params = connection.settings_dict
    socket_path = f"{params['HOST']}/.s.PGSQL.{params['PORT'] or 5432}"
    original = params["HOST"], params["PORT"]
    with FaultProxy(unix_path=socket_path) as proxy:
        reconnect()
        params["HOST"], params["PORT"] = "127.0.0.1", str(proxy.port)
        try:
            yield proxy
        finally:
            proxy.forward()
            reconnect()
            params["HOST"], params["PORT"] = original


def timed_health(client):
    started = time.monotonic()
    response = client.get("/health")
    return response, time.monotonic() - started


def test_a_hung_redis_is_reported_within_the_health_deadline(client, db, settings, redis_proxy):
    settings.REDIS_URL = f"redis://127.0.0.1:{redis_proxy.port}/0"
    assert client.get("/health").json()["redis"] == "ok"
    redis_proxy.hang()

    response, elapsed = timed_health(client)

    assert response.status_code == 503
    assert response.json()["redis"] == "down"
    assert response.json()["database"] == "ok"
    # The bound: /health answers within its own deadline (plus scheduling slack).
    assert elapsed < settings.TALIA_HEALTH_TIMEOUT_S + 1.5


@pytest.mark.django_db(transaction=True)
def test_a_hung_database_is_reported_within_the_health_deadline(client, settings, database_proxy):
    assert client.get("/health").json()["database"] == "ok"
    database_proxy.hang()

    response, elapsed = timed_health(client)
    second, second_elapsed = timed_health(client)  # stuck checks from the first call do not pile up

    assert response.status_code == second.status_code == 503
    assert response.json()["database"] == "down"
    assert response.json()["redis"] == "ok"
    assert max(elapsed, second_elapsed) < settings.TALIA_HEALTH_TIMEOUT_S + 1.5
    database_proxy.forward()
    wait_for(lambda: client.get("/health").status_code == 200, timeout=30)


# --- /health/live and /health/ready ----------------------------------------------------------------


def test_live_answers_without_touching_anything(client):
    # No `db` fixture: any database access raises in this test; Redis points at a closed port.
    with override_settings(REDIS_URL="redis://127.0.0.1:9/0"):
        response = client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_ready_when_everything_is_up(client, db):
    response = client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "migrations": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_ready_is_a_503_naming_redis_when_it_stops(client, db, spare_redis):
    server, url = spare_redis
    with override_settings(REDIS_URL=url):
        assert client.get("/health/ready").status_code == 200
        server.shutdown()
        response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "problems": ["redis"],
        "database": "ok",
        "redis": "down",
        "migrations": "ok",
    }


@pytest.mark.django_db(transaction=True)
def test_ready_is_a_503_naming_the_database_when_it_is_unreachable(client):
    with database_unreachable():
        response = client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "down"
    assert body["migrations"] == "unknown"
    assert body["redis"] == "ok"
    assert set(body["problems"]) == {"database", "migrations"}


@pytest.mark.django_db(transaction=True)
def test_ready_is_a_503_naming_an_unapplied_migration(client):
    """A release whose migrations have not run yet: the record of one applied migration is taken away
    (committed, so the check's own connection sees it) and put back afterwards."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE id = (SELECT max(id) FROM django_migrations WHERE app = 'conversations')"
            " RETURNING app, name, applied"
        )
        app, name, applied = cursor.fetchone()
    try:
        response = client.get("/health/ready")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)", [app, name, applied]
            )

    assert response.status_code == 503
    body = response.json()
    assert body["problems"] == ["migrations"]
    assert body["migrations"] == "unapplied"
    assert body["unapplied"] == [f"{app}.{name}"]
    assert client.get("/health/ready").status_code == 200


def test_health_probes_are_never_redirected_to_https(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/accounts/login/").status_code == 301
