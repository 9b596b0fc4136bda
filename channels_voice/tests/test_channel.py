"""The voice door as the core sees it: its registered spec and its system checks."""

from __future__ import annotations

from django.utils import translation

from channels_voice.checks import realtime_can_redirect_calls, transfer_number_valid, voice_webhooks_verifiable
from conversations.registry import channel_specs


def test_voice_is_a_pulled_channel_that_waits_for_the_reply():
    spec = channel_specs.get("voice")

    assert spec is not None
    assert (spec.delivery, spec.deliverer, spec.waits_for_reply, spec.renders_links) == ("pull", None, True, False)
    with translation.override("es"):
        assert str(spec.label) == "Llamada"
    with translation.override("en"):
        assert str(spec.label) == "Call"


def test_a_transfer_number_that_is_not_e164_is_an_error(settings):
    settings.TALIA_VOICE_TRANSFER_NUMBER = "910 111 222"
    assert [found.id for found in transfer_number_valid()] == ["channels_voice.E001"]

    settings.TALIA_VOICE_TRANSFER_NUMBER = "+34910111222"
    assert transfer_number_valid() == []


def test_without_an_auth_token_the_deploy_check_warns(settings):
    settings.TALIA_TWILIO_AUTH_TOKEN = ""
    assert [found.id for found in voice_webhooks_verifiable()] == ["channels_voice.W001"]


def test_realtime_mode_without_twilio_rest_credentials_warns(settings):
    settings.TALIA_VOICE_MODE = "realtime"
    settings.TALIA_TWILIO_ACCOUNT_SID = ""
    assert [found.id for found in realtime_can_redirect_calls()] == ["channels_voice.W002"]

    settings.TALIA_TWILIO_ACCOUNT_SID, settings.TALIA_TWILIO_AUTH_TOKEN = "AC" + "1" * 32, "token"
    assert realtime_can_redirect_calls() == []
    settings.TALIA_VOICE_MODE, settings.TALIA_TWILIO_ACCOUNT_SID = "gather", ""
    assert realtime_can_redirect_calls() == []
