"""A gather-mode call over real sockets: Twilio's signed webhooks to a running Daphne (the async turn
views under ASGI), the assistant's turn in the real Celery worker, the call ended by a status callback."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from channels_voice.models import CallStatus, VoiceCall
from channels_voice.tests.conftest import ACCOUNT_SID, AUTH_TOKEN, child, new_call_sid, sign
from conversations.models import ConversationStatus, Message, Sender
from talia.testing.browser import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_voice(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> LiveServer:
    monkeypatch.setenv("TALIA_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("TALIA_VOICE_TURN_WAIT_S", "12")
    server: LiveServer = request.getfixturevalue("live_system")
    return server


def post(server: LiveServer, path: str, params: dict[str, str], signature: str | None = None) -> tuple[int, bytes]:
    url = f"{server.url}{path}"
    data = urllib.parse.urlencode(params).encode()
    headers = {"X-Twilio-Signature": sign(url, params) if signature is None else signature}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 (the test's own server)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def twiml(body: bytes) -> ET.Element:
    return ET.fromstring(body)  # noqa: S314 (TalIA's own answer, in a test)


def test_a_call_over_daphne_is_answered_turn_by_turn_and_ends(live_voice: LiveServer):
    call_sid = new_call_sid()
    base: dict[str, Any] = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+34600111222",
        "To": "+34910000000",
    }

    forged_status, _ = post(live_voice, "/api/voice/inbound", {**base, "CallStatus": "ringing"}, signature="bm9wZQ==")
    status, body = post(live_voice, "/api/voice/inbound", {**base, "CallStatus": "ringing"})

    assert forged_status == 403 and status == 200
    action = child(twiml(body), "Gather").get("action", "")
    status, body = post(live_voice, action, {**base, "CallStatus": "in-progress", "SpeechResult": "Hola"})
    answer = twiml(body)
    said = [element.text for element in answer.iter("Say")]
    while (redirect := answer.find("Redirect")) is not None:  # a slow turn: Twilio follows the redirect
        status, body = post(live_voice, redirect.text or "", {**base, "CallStatus": "in-progress"})
        answer = twiml(body)
        said += [element.text for element in answer.iter("Say")]

    assert status == 200 and answer.find("Gather") is not None
    reply = Message.objects.get(sender=Sender.ASSISTANT)
    assert said[-1] == reply.text and reply.conversation.channel == "voice"

    status, body = post(
        live_voice,
        "/api/voice/status",
        {**base, "CallStatus": "completed", "SequenceNumber": "3", "CallDuration": "17"},
    )

    assert status == 200
    call = VoiceCall.objects.select_related("conversation").get(call_sid=call_sid)
    assert (call.status, call.duration_s) == (CallStatus.COMPLETED, 17)
    assert call.conversation is not None and call.conversation.status == ConversationStatus.CLOSED
    assert "Traceback" not in live_voice.log()
