"""`manage.py simulate_call`: a whole call from the terminal, played in-process with Django's test Client
(signed webhooks, TalIA's real views), the assistant's turns in the real Celery worker (offline engine)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from channels_voice.models import CallStatus, VoiceCall
from conversations.models import ConversationStatus, Message, Sender


def simulate(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate_call", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_call_with_said_lines_is_answered_stored_and_completed(celery_worker: Any, settings: Any):
    settings.TALIA_VOICE_TURN_WAIT_S = 12

    printed = simulate("--from", "+34600777888", "--say", "Hola, soy Ana", "--say", "Sí, vale")

    call = VoiceCall.objects.select_related("conversation").get(from_number="+34600777888")
    assert call.status == CallStatus.COMPLETED and call.ended_at is not None and call.duration_s is not None
    assert call.conversation is not None and call.conversation.status == ConversationStatus.CLOSED
    messages = list(Message.objects.filter(conversation=call.conversation).order_by("seq"))
    assert [m.text for m in messages if m.sender == Sender.CONTACT] == ["Hola, soy Ana", "Sí, vale"]
    replies = [m.text for m in messages if m.sender == Sender.ASSISTANT]
    assert len(replies) == 2
    lines = printed.splitlines()
    assert lines[1].startswith("TalIA: ") and "inteligencia artificial" in lines[1]  # the disclosure first
    assert lines[2:] == [
        "Caller: Hola, soy Ana",
        f"TalIA: {replies[0]}",
        "Caller: Sí, vale",
        f"TalIA: {replies[1]}",
        f"Call {call.call_sid} completed.",
    ]


@pytest.mark.django_db(transaction=True)
def test_without_say_options_the_callers_lines_come_from_stdin(
    celery_worker: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
):
    settings.TALIA_VOICE_TURN_WAIT_S = 12
    settings.TALIA_TWILIO_AUTH_TOKEN = ""  # in-process, a throwaway token signs and checks
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello, I am Ann\n\nnever said\n"))

    printed = simulate("--from", "+14155550123")

    call = VoiceCall.objects.get(from_number="+14155550123")
    said = Message.objects.filter(conversation=call.conversation, sender=Sender.CONTACT).values_list("text", flat=True)
    assert list(said) == ["Hello, I am Ann"]  # the empty line hung up
    assert "Caller: Hello, I am Ann" in printed and "never said" not in printed
    assert call.status == CallStatus.COMPLETED and call.locale == "en"


@pytest.mark.django_db
def test_over_http_without_a_token_to_sign_with_it_refuses(settings: Any):
    settings.TALIA_TWILIO_AUTH_TOKEN = ""

    with pytest.raises(CommandError, match="auth-token"):
        simulate("--url", "http://127.0.0.1:9", "--say", "Hola")

    assert not VoiceCall.objects.exists()


@pytest.mark.django_db
def test_a_refused_webhook_fails_the_command(settings: Any):
    settings.TALIA_VOICE_TURN_WAIT_S = 0

    with pytest.raises(CommandError, match="HTTP 400"):
        simulate("--from", "", "--say", "Hola")
