"""Best-effort geolocation, against a small local HTTP server standing in for the provider."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from channels_web.tasks import geolocate_message, lookup
from conversations import inbox
from conversations.models import Contact, Message
from talia.testing.plugin import wait_for

PUBLIC_IP = "8.8.4.4"  # only a string here: no traffic goes to it


class FakeGeolocation:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.paths.append(self.path)
                fake.headers.append(dict(self.headers))
                body = json.dumps({"ip": PUBLIC_IP, "country": "ES", "city": "Valencia", "secret": "dropped"}).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{{ip}}/json"


@pytest.fixture
def geo() -> Iterator[FakeGeolocation]:
    fake = FakeGeolocation()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_a_message_and_its_contact_get_the_location_of_the_visitors_ip(db, geo):
    received = inbox.receive("web", "geo-session-0001", "Hola")

    with override_settings(TALIA_GEOLOCATION_API_URL=geo.url, TALIA_GEOLOCATION_API_TOKEN="geo-token"):
        geolocate_message(str(received.message.pk), PUBLIC_IP)
        geolocate_message(str(received.message.pk), PUBLIC_IP)  # the second lookup comes from the cache

    received.message.refresh_from_db()
    assert received.message.metadata["geolocation"] == {"country": "ES", "city": "Valencia"}
    assert Contact.objects.get().metadata["geolocation"]["city"] == "Valencia"
    assert geo.paths == [f"/{PUBLIC_IP}/json"]
    assert geo.headers[0]["Authorization"] == "Bearer geo-token"


def test_private_addresses_are_never_looked_up(db, geo):
    with override_settings(TALIA_GEOLOCATION_API_URL=geo.url):
        assert lookup("192.168.1.20") is None
        assert lookup("127.0.0.1") is None
        assert lookup("not an ip") is None
    assert geo.paths == []


def test_an_unreachable_service_is_shrugged_off(db):
    with override_settings(TALIA_GEOLOCATION_API_URL="http://127.0.0.1:9/{ip}"):
        assert lookup("8.8.8.8") is None


def test_an_error_answer_is_no_location_even_with_a_body(db, geo):
    geo.status = 500

    with override_settings(TALIA_GEOLOCATION_API_URL=geo.url):
        assert lookup("9.9.9.9") is None  # an address no other test looks up (lookups are cached)

    assert geo.paths == ["/9.9.9.9/json"]


def test_the_api_geolocates_after_storing_without_waiting(client, celery_worker, geo, settings):
    settings.TALIA_GEOLOCATION_API_URL = geo.url
    settings.TALIA_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.TALIA_REPLY_WAIT_S = 0
    body = {"session_id": "geo-session-0002", "author": "user", "content": "Hola"}

    response = client.post(
        "/api/webchat/messages", data=json.dumps(body), content_type="application/json", HTTP_X_FORWARDED_FOR=PUBLIC_IP
    )

    assert response.status_code == 202
    message_id = response.json()["metadata"]["last_message_id"]
    located = wait_for(lambda: Message.objects.get(pk=message_id).metadata.get("geolocation"))
    assert located == {"country": "ES", "city": "Valencia"}
