"""End to end over real sockets: Twilio's webhook to a running Daphne, the assistant's reply sent by the
Celery worker to the fake Twilio, and the fake's signed status callbacks back to Daphne."""

from __future__ import annotations

import urllib.parse
import urllib.request
from typing import Any

import pytest

from channels_whatsapp.tests.conftest import WEBHOOK, text
from conversations.models import DeliveryStatus, Message, Sender
from talia.testing.browser import LiveServer
from talia.testing.fake_twilio import FakeTwilio
from talia.testing.plugin import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_whatsapp(fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch, settings: Any, request) -> LiveServer:
    """Daphne and a worker with the Twilio settings pointed at the fake, which reports statuses back."""
    for name in ("TALIA_TWILIO_API_BASE", "TALIA_TWILIO_ACCOUNT_SID", "TALIA_TWILIO_AUTH_TOKEN"):
        monkeypatch.setenv(name, getattr(settings, name))
    monkeypatch.setenv("TALIA_TWILIO_WHATSAPP_FROM", settings.TALIA_TWILIO_WHATSAPP_FROM)
    server: LiveServer = request.getfixturevalue("live_system")
    settings.TALIA_PUBLIC_BASE_URL = server.url  # the worker (this process) asks Twilio to call back there
    fake_twilio.callbacks = True
    return server


def post_form(url: str, params: dict[str, str], signature: str) -> tuple[int, str]:
    data = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(url, data=data, headers={"X-Twilio-Signature": signature})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the test's own server)
        return response.status, response.read().decode()


def test_a_message_is_answered_and_the_reply_reported_delivered(live_whatsapp: LiveServer, fake_twilio: FakeTwilio):
    params = text("Hola, ¿estás disponible?")
    url = f"{live_whatsapp.url}{WEBHOOK}"

    status, body = post_form(url, params, fake_twilio.sign(url, params))

    assert status == 200 and body.endswith("<Response />")
    reply = wait_for(lambda: Message.objects.filter(sender=Sender.ASSISTANT).first())
    wait_for(lambda: Message.objects.get(pk=reply.pk).delivery_status == DeliveryStatus.DELIVERED)
    reply.refresh_from_db()
    [sent] = fake_twilio.sent
    assert reply.external_id == sent["sid"] and sent["StatusCallback"] == f"{live_whatsapp.url}/api/v1/whatsapp/status"
    assert fake_twilio.state.callback_errors == []
    assert "Traceback" not in live_whatsapp.log()
