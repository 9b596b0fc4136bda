"""Error answers: JSON on API paths (DEBUG on or off), friendly bilingual pages elsewhere, and outages of
the database or Redis as 503s that name the part. The failures are real: views that raise, a database
socket where no server listens, a Redis of the test's own that is shut down."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from talia.runtime.embedded import EmbeddedRedis
from talia.testing.faults import database_unreachable

API_ERROR_PATHS = ["/api/nothing-here", "/console/api/nothing-here", "/api/webchat/messages/extra"]


@pytest.fixture
def quiet_client() -> Client:
    """A client that returns Django's 500 answer instead of raising the view's exception."""
    return Client(raise_request_exception=False)


@pytest.fixture
def spare_redis(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("r"), delete_on_stop=True)
    url = server.start()
    yield server, url
    server.stop()


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code
    assert "Traceback" not in response.content.decode()


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", API_ERROR_PATHS)
def test_unknown_api_path_is_a_json_404(client, db, settings, path, debug):
    settings.DEBUG = debug
    assert_json_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.urls("talia.tests.error_urls")
def test_a_bug_on_an_api_path_is_a_json_500_without_traceback(quiet_client, db, settings, debug):
    settings.DEBUG = debug
    response = quiet_client.get("/api/test/boom")

    assert_json_error(response, 500, "server_error")
    assert "secret" not in response.content.decode()


@pytest.mark.urls("talia.tests.error_urls")
def test_a_bug_on_a_page_is_the_friendly_500_page(quiet_client, db):
    response = quiet_client.get("/test/boom", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body
    assert "secret" not in body and "Traceback" not in body


def test_the_404_page_is_friendly_and_bilingual(client, db):
    english = client.get("/console/nothing-here/", HTTP_ACCEPT_LANGUAGE="en")
    spanish = client.get("/console/nothing-here/", HTTP_ACCEPT_LANGUAGE="es")

    assert english.status_code == spanish.status_code == 404
    assert "Page not found" in english.content.decode()
    assert "Página no encontrada" in spanish.content.decode()
    assert '<html lang="es">' in spanish.content.decode()


def test_a_method_not_allowed_on_an_api_path_keeps_its_allow_header(client, db):
    response = client.delete("/health")

    assert_json_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_a_suspicious_request_is_a_json_400_on_api_paths(client, db):
    response = client.get("/api/webchat/config", HTTP_HOST="evil.example")

    assert_json_error(response, 400, "bad_request")


@pytest.mark.django_db(transaction=True)
def test_database_down_is_a_json_503_on_the_widget_api(client):
    with database_unreachable():
        response = client.get("/api/webchat/history/" + "a" * 32, HTTP_ORIGIN="http://testserver")

    assert_json_error(response, 503, "database_unavailable")
    assert response["Retry-After"]
    # Answered by the view's exception handler, so the widget on another page can read it (CORS).
    assert response["Access-Control-Allow-Origin"] == "http://testserver"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/console/", "/admin/"])
def test_database_down_is_a_friendly_503_page_for_signed_in_staff(client, settings, path, debug):
    settings.DEBUG = debug
    staff = get_user_model().objects.create_user("sup", password="x-long-password", is_staff=True, is_superuser=True)
    client.force_login(staff)
    client.raise_request_exception = False
    with database_unreachable():
        response = client.get(path, HTTP_ACCEPT_LANGUAGE="es")

    assert response.status_code == 503
    body = response.content.decode()
    assert "No disponible temporalmente" in body
    assert "La base de datos no responde" in body
    assert "Traceback" not in body


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("debug", [False, True])
def test_database_down_is_a_json_503_on_the_console_api(client, settings, debug):
    settings.DEBUG = debug
    staff = get_user_model().objects.create_user("sup", password="x-long-password", is_staff=True)
    client.force_login(staff)
    client.raise_request_exception = False
    with database_unreachable():
        response = client.get(f"/console/api/conversations/{uuid.uuid4()}/notes")

    assert_json_error(response, 503, "database_unavailable")


@pytest.mark.urls("talia.tests.error_urls")
@pytest.mark.parametrize("debug", [False, True])
def test_redis_down_is_a_503_naming_redis(quiet_client, db, spare_redis, settings, debug):
    settings.DEBUG = debug
    server, url = spare_redis
    settings.REDIS_URL = url
    assert quiet_client.get("/api/test/redis").status_code == 200
    server.shutdown()

    api = quiet_client.get("/api/test/redis")
    page = quiet_client.get("/console/test/redis", HTTP_ACCEPT_LANGUAGE="en")

    assert_json_error(api, 503, "redis_unavailable")
    assert page.status_code == 503
    assert "The messaging service (Redis) is not answering" in page.content.decode()
