"""Per-number language: a call to one of the business's numbers (VoiceNumber) is greeted and heard in
that number's language; a number without one falls back to the caller's country."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from channels_voice.models import VoiceCall, VoiceNumber
from channels_voice.tests.conftest import Caller, child, says

pytestmark = pytest.mark.django_db


def greeted_in(root: Any) -> str:
    return child(root, "Gather").get("language", "")


def test_a_number_set_to_english_greets_a_spanish_caller_in_english(client: Client):
    VoiceNumber.objects.create(number="+34910000001", locale="en", label="International line")
    caller = Caller(client, number="+34600123456", to="+34910000001")

    root = caller.dial()

    assert greeted_in(root) == "en-US" and "artificial intelligence" in says(root)[0]
    assert VoiceCall.objects.get(call_sid=caller.call_sid).locale == "en"


def test_a_number_set_to_spanish_greets_a_british_caller_in_spanish(client: Client):
    VoiceNumber.objects.create(number="+34910000002", locale="es")

    root = Caller(client, number="+447700900123", to="+34910000002").dial()

    assert greeted_in(root) == "es-MX"


def test_without_a_configured_number_the_callers_country_decides(client: Client):
    VoiceNumber.objects.create(number="+34910000001", locale="en")  # another number of the business

    spanish = Caller(client, number="+34600123456", to="+34910000009").dial()
    british = Caller(client, number="+447700900123", to="+34910000009").dial()

    assert (greeted_in(spanish), greeted_in(british)) == ("es-MX", "en-US")


def test_the_caller_can_still_switch_language_on_a_configured_number(client: Client, settings: Any):
    settings.TALIA_VOICE_TURN_WAIT_S = 0  # no worker answers: TalIA holds, then asks again, in Spanish
    VoiceNumber.objects.create(number="+34910000001", locale="en")
    caller = Caller(client, number="+34600123456", to="+34910000001")
    caller.dial()

    heard = caller.speak("En español, por favor")

    assert heard.listening_in() == "es-MX"


def test_a_voice_number_must_be_e164():
    with pytest.raises(ValidationError):
        VoiceNumber(number="910 000 001", locale="es").full_clean()
    VoiceNumber(number="+34910000001", locale="es").full_clean()


def test_staff_manage_numbers_in_the_admin(client: Client, django_user_model: Any):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))

    response = client.post(
        "/admin/channels_voice/voicenumber/add/", {"number": "+34910000003", "locale": "en", "label": "Sales"}
    )

    assert response.status_code == 302
    assert VoiceNumber.objects.get().locale == "en"
