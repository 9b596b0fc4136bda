"""End to end over real sockets: Twilio's webhook to a running Daphne, the assistant's reply sent by the
Celery worker to the fake Twilio, and the fake's signed status callbacks back to Daphne."""

from __future__ import annotations

import urllib.parse
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from channels_whatsapp.tests.conftest import WEBHOOK, text
from conversations.models import DeliveryStatus, Message, Sender
from talia.testing.browser import LiveServer
from talia.testing.fake_twilio import FakeTwilio
from talia.testing.plugin import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "en-GB", "viewport": {"width": 1280, "height": 800}}


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


def test_the_dev_phone_plays_a_contact_and_shows_the_reply_and_its_status(
    live_whatsapp: LiveServer, fake_twilio: FakeTwilio, client, django_user_model, settings
):
    settings.DEBUG = True
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))

    page = client.get("/dev/phone/")
    sent = client.post(
        "/dev/phone/send", {"number": "34600000001", "name": "Lucía", "text": "Hola"}, "application/json"
    )

    assert page.status_code == 200 and b"data-send-url" in page.content
    assert sent.status_code == 200 and sent.json()["status"] == 200
    inbound = Message.objects.get(external_id=sent.json()["message_sid"])
    assert (inbound.text, inbound.conversation.contact.display_name) == ("Hola", "Lucía")

    def delivered_reply() -> dict[str, Any] | None:
        listed = client.get("/dev/phone/messages", {"number": "34600000001"}).json()["messages"]
        return next((m for m in listed if m["status"] == "delivered"), None)

    reply = wait_for(delivered_reply)
    stored = Message.objects.get(external_id=reply["sid"])
    assert stored.sender == Sender.ASSISTANT and stored.text == reply["body"]
    wait_for(lambda: Message.objects.get(pk=stored.pk).delivery_status == DeliveryStatus.DELIVERED)


def test_the_dev_phone_is_for_staff_with_debug_on_only(db, client, django_user_model, settings):
    settings.DEBUG = False
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))
    assert client.get("/dev/phone/").status_code == 404
    settings.DEBUG = True
    client.force_login(django_user_model.objects.create_user("customer"))
    assert client.get("/dev/phone/").status_code == 403
    assert client.post("/dev/phone/send", {"number": "1", "text": "x"}, "application/json").status_code == 403


@pytest.mark.browser
def test_an_agent_claims_a_whatsapp_conversation_in_the_console_and_replies(
    live_whatsapp: LiveServer, fake_twilio: FakeTwilio, page: Any, django_user_model: Any
):
    from django.contrib.auth.models import Group

    from conversations.models import Conversation, ConversationStatus
    from talia.testing.sockets import session_cookie

    ana = django_user_model.objects.create_user("ana", first_name="Ana")
    ana.groups.add(Group.objects.get_or_create(name="agents")[0])
    name, value = session_cookie(ana).split("=", 1)
    page.context.add_cookies([{"name": name, "value": value, "url": live_whatsapp.url}])
    page.goto(f"{live_whatsapp.url}/console/")  # an agent is online: the assistant may hand over

    url = f"{live_whatsapp.url}{WEBHOOK}"
    for number, line in enumerate(("Hola, tengo una duda con mi factura", "Quiero hablar con una persona"), start=1):
        params = text(line, ProfileName="Lucía")
        assert post_form(url, params, fake_twilio.sign(url, params))[0] == 200

        def answered(count: int = number) -> bool:
            return Message.objects.filter(sender=Sender.ASSISTANT).count() >= count

        wait_for(answered)
    conversation = wait_for(lambda: Conversation.objects.filter(status=ConversationStatus.QUEUED).first())
    waiting = page.locator(f"a[href*='/console/conversations/{conversation.pk}/']").first
    expect(waiting).to_be_visible(timeout=20_000)  # in the queue, live
    expect(page.get_by_text("WhatsApp").first).to_be_visible()
    waiting.click()
    page.locator("#claim-button").click()
    expect(page.get_by_text("Assigned to Ana")).to_be_visible(timeout=20_000)
    composer = page.locator("textarea").first
    composer.fill("Hola Lucía, soy Ana. Cuéntame qué pasa con la factura.")
    composer.press("Enter")

    reply = wait_for(lambda: Message.objects.filter(sender=Sender.AGENT).first())
    wait_for(lambda: any(m.get("Body") == reply.text for m in fake_twilio.sent))
    [sent] = [m for m in fake_twilio.sent if m.get("Body") == reply.text]
    assert sent["To"] == "whatsapp:+34600123456"
    shown = page.locator(f"#messages li[data-id='{reply.pk}']")
    expect(shown.locator(".delivery")).to_have_text("Delivered", timeout=20_000)
