"""The calls API: agents and staff only; newest first, paginated; the transcript by speaker."""

from __future__ import annotations

import pytest

from channels_voice.tests.conftest import Caller, conversation_of
from conversations import inbox
from conversations.models import Sender

pytestmark = pytest.mark.django_db


def test_anonymous_and_non_agents_are_refused(client, django_user_model):
    anonymous = client.get("/api/voice/calls")
    client.force_login(django_user_model.objects.create_user("visitor"))
    stranger = client.get("/api/voice/calls")

    assert anonymous.status_code in (401, 403) and "error" in anonymous.json()
    assert stranger.status_code == 403 and "error" in stranger.json()


def test_calls_are_listed_newest_first_and_paginated(client, agent, settings):
    settings.TALIA_VOICE_TURN_WAIT_S = 0
    older, newer = Caller(client, number="+34600000001"), Caller(client, number="+447700900123")
    older.dial()
    newer.dial()
    newer.status("completed", 1, CallDuration="7")
    client.force_login(agent)

    page = client.get("/api/voice/calls", {"page_size": 1})

    assert page.status_code == 200
    body = page.json()
    assert body["count"] == 2 and body["next"]
    [row] = body["results"]
    assert row["call_sid"] == newer.call_sid and row["from"] == "+447700900123"
    assert (row["status"], row["duration_s"], row["locale"], row["mode"]) == ("completed", 7, "en", "gather")
    assert row["conversation"]["status"] == "closed" and row["contact"]["id"]
    assert "transcript" not in row


def test_a_call_shows_its_transcript_by_speaker(caller: Caller, agent, client, settings):
    settings.TALIA_VOICE_TURN_WAIT_S = 0
    caller.dial()
    caller.speak("Hola, quiero información")
    conversation = conversation_of(caller.call_sid)
    inbox.send(conversation, "Claro, ¿sobre qué producto?", sender=Sender.ASSISTANT)
    inbox.send(conversation, "Soy Ana, del equipo.", sender=Sender.AGENT, agent=agent)
    client.force_login(agent)

    detail = client.get(f"/api/voice/calls/{caller.call_sid}")

    assert detail.status_code == 200
    transcript = detail.json()["transcript"]
    assert [(line["speaker"], line["text"]) for line in transcript] == [
        ("caller", "Hola, quiero información"),
        ("assistant", "Claro, ¿sobre qué producto?"),
        ("agent", "Soy Ana, del equipo."),
    ]
    assert all(line["time"] for line in transcript)


def test_an_unknown_call_is_a_json_404(client, agent):
    client.force_login(agent)

    response = client.get("/api/voice/calls/CA0000")

    assert response.status_code == 404 and "error" in response.json()
