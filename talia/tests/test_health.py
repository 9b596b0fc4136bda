"""GET /health against the real database, Redis and Celery worker, and with each of them down."""

from __future__ import annotations

import contextlib

import pytest
from django.db import connection
from django.test import override_settings

from talia.runtime.embedded import EmbeddedRedis


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


@contextlib.contextmanager
def database_unreachable():
    """Point the default connection at a socket directory where no server listens."""
    original = connection.settings_dict["HOST"]
    connection.close()
    connection.settings_dict["HOST"] = "/nonexistent-talia-socket-dir"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["HOST"] = original


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
