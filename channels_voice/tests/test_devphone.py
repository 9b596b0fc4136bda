"""The dev phone's call tab: staff with DEBUG on call TalIA through its JSON endpoints, which sign and post
Twilio's Voice webhooks to a running Daphne; the assistant's turns run in the real Celery worker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from channels_voice.models import CallStatus, VoiceCall
from channels_voice.tests.conftest import AUTH_TOKEN
from conversations.models import ConversationStatus, Message, Sender
from talia.testing.browser import LiveServer

START = "/dev/phone/call/start"
SAY = "/dev/phone/call/say"
HANGUP = "/dev/phone/call/hangup"


@pytest.fixture
def staff(client: Any, django_user_model: Any, settings: Any) -> Any:
    settings.DEBUG = True
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))
    return client


@pytest.fixture
def live_voice(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, settings: Any) -> LiveServer:
    monkeypatch.setenv("TALIA_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("TALIA_VOICE_TURN_WAIT_S", "12")
    server: LiveServer = request.getfixturevalue("live_system")
    settings.TALIA_PUBLIC_BASE_URL = server.url  # where the dev phone posts, as for WhatsApp's
    return server


def post(client: Any, path: str, body: Any) -> Any:
    return client.post(path, body, "application/json")


@pytest.mark.django_db(transaction=True)
def test_a_whole_call_from_the_dev_phone(live_voice: LiveServer, staff: Any):
    page = staff.get("/dev/phone/call/")
    assert page.status_code == 200 and b"data-say-url" in page.content and b'href="/dev/phone/"' in page.content

    started = post(staff, START, {"number": "+34600555111"})

    assert started.status_code == 200, started.content
    greeting = started.json()
    call_sid = greeting["call_sid"]
    assert greeting["listening"] and not greeting["hung_up"]
    assert "<Gather" in greeting["twiml"][0] and "inteligencia artificial" in greeting["said"][0]["text"]
    assert greeting["said"][0]["language"] == "es-MX"
    call = VoiceCall.objects.get(call_sid=call_sid)
    assert (call.from_number, call.status) == ("+34600555111", CallStatus.IN_PROGRESS)

    answer = post(staff, SAY, {"call_sid": call_sid, "text": "Hola, soy Ana"})

    assert answer.status_code == 200, answer.content
    turn = answer.json()
    reply = Message.objects.get(conversation__voice_calls__call_sid=call_sid, sender=Sender.ASSISTANT)
    assert turn["said"][-1] == {"text": reply.text, "language": "es-MX"} and turn["listening"]
    heard = Message.objects.get(conversation__voice_calls__call_sid=call_sid, sender=Sender.CONTACT)
    assert (heard.text, heard.channel) == ("Hola, soy Ana", "voice")

    ended = post(staff, HANGUP, {"call_sid": call_sid})

    assert ended.status_code == 200 and ended.json()["status"] == "applied"
    call.refresh_from_db()
    assert call.status == CallStatus.COMPLETED and call.duration_s is not None and call.ended_at is not None
    assert call.conversation is not None and call.conversation.status == ConversationStatus.CLOSED
    again = post(staff, SAY, {"call_sid": call_sid, "text": "¿Sigues ahí?"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_listening"
    assert post(staff, HANGUP, {"call_sid": call_sid}).status_code == 409
    assert "Traceback" not in live_voice.log()


@pytest.mark.django_db
def test_the_call_tab_is_for_staff_with_debug_on_only(client: Any, django_user_model: Any, settings: Any):
    settings.DEBUG = False
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))
    assert client.get("/dev/phone/call/").status_code == 404
    assert post(client, START, {"number": "+34600555111"}).status_code == 404
    settings.DEBUG = True
    client.force_login(django_user_model.objects.create_user("customer"))
    assert client.get("/dev/phone/call/").status_code == 403
    for path in (START, SAY, HANGUP):
        assert post(client, path, {"number": "+34600555111"}).status_code == 403
    assert not VoiceCall.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (START, "{not json", 400, "malformed_json"),
        (START, ["+34600555111"], 400, "malformed_json"),
        (START, {"number": "600"}, 400, "invalid"),
        (START, {"number": "<script>"}, 400, "invalid"),
        (SAY, {"text": "Hola"}, 400, "invalid"),
        (SAY, {"call_sid": "CA" + "0" * 32, "text": "Hola"}, 404, "unknown_call"),
        (SAY, {"call_sid": "CA" + "0" * 32, "text": "  "}, 400, "invalid"),
        (SAY, {"call_sid": "CA" + "0" * 32, "text": "x" * 1001}, 400, "invalid"),
        (HANGUP, {"call_sid": "CA" + "0" * 32}, 404, "unknown_call"),
        (HANGUP, {}, 400, "invalid"),
    ],
)
def test_bad_input_is_a_4xx_json_naming_the_problem(staff: Any, path: str, body: Any, status: int, code: str):
    answer = staff.post(path, body if isinstance(body, str) else json.dumps(body), "application/json")

    assert answer.status_code == status and answer.json()["error"]["code"] == code
    assert not VoiceCall.objects.exists()


@pytest.mark.django_db
def test_without_an_auth_token_a_call_cannot_be_signed(staff: Any, settings: Any):
    settings.TALIA_TWILIO_AUTH_TOKEN = ""

    answer = post(staff, START, {"number": "+34600555111"})

    assert answer.status_code == 409 and answer.json()["error"]["code"] == "not_configured"
