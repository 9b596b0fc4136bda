"""The inbound call webhook: signed or refused, the call and its conversation opened once, and the
TwiML answer parsed back: the AI disclosure first, in the caller's language, then a Gather in it."""

from __future__ import annotations

import pytest

from channels_voice.models import CallStatus, VoiceCall
from channels_voice.services import locale_for
from channels_voice.tests.conftest import INBOUND, Caller, child, conversation_of, parse, sign
from conversations.models import Conversation, ConversationStatus, Event

pytestmark = pytest.mark.django_db


def nothing_stored() -> bool:
    return not VoiceCall.objects.exists() and not Conversation.objects.exists() and not Event.objects.exists()


def test_a_signed_call_is_answered_and_opens_a_voice_conversation(caller: Caller):
    root = caller.dial()

    call = VoiceCall.objects.get(call_sid=caller.call_sid)
    assert (call.from_number, call.to_number, call.status, call.locale) == (
        "+34600123456",
        "+34910000000",
        CallStatus.IN_PROGRESS,
        "es",
    )
    conversation = conversation_of(caller.call_sid)
    assert conversation.channel == "voice" and conversation.status == ConversationStatus.BOT
    assert call.answered_at is not None
    [started] = Event.objects.filter(name="call_started")
    assert started.conversation == conversation
    assert started.payload["call_sid"] == caller.call_sid and started.payload["mode"] == "gather"
    assert root.find("Gather") is not None


def test_a_retried_inbound_webhook_finds_the_same_call(caller: Caller):
    caller.dial()
    caller.dial()

    assert VoiceCall.objects.count() == 1 and Conversation.objects.count() == 1
    assert Event.objects.filter(name="call_started").count() == 1


def test_disclosure_comes_first_and_gather_listens_in_spanish_for_a_spanish_number(caller: Caller):
    root = caller.dial()

    first, second = list(root)
    assert first.tag == "Say" and second.tag == "Gather"
    assert first.get("language") == "es-MX" and first.get("voice", "").startswith("Polly.")
    disclosure = first.text or ""
    assert "asistente de inteligencia artificial" in disclosure and "no se graba" in disclosure
    assert second.get("input") == "speech" and second.get("language") == "es-MX"
    assert second.get("speechTimeout") == "auto" and second.get("method") == "POST"
    assert second.get("action", "").startswith("/api/voice/gather?")


@pytest.mark.parametrize(
    ("number", "language"),
    [("+447700900123", "en-US"), ("+5215512345678", "es-MX"), ("+14155550100", "en-US"), ("+18095550123", "es-MX")],
)
def test_the_language_follows_the_callers_country(client, number: str, language: str):
    root = Caller(client, number=number).dial()

    say, gather = list(root)
    assert (say.get("language"), gather.get("language")) == (language, language)
    assert ("artificial intelligence" in (say.text or "")) == (language == "en-US")


def test_a_number_without_a_country_uses_the_default_locale(client, settings):
    settings.TALIA_VOICE_DEFAULT_LOCALE = "en"
    assert locale_for("client:alice") == "en"
    assert locale_for("client:alice", "MX") == "es"

    root = Caller(client, number="client:alice").dial()

    assert child(root, "Gather").get("language") == "en-US"


def test_the_configured_disclosure_is_said(caller: Caller, settings):
    settings.TALIA_VOICE_DISCLOSURE_ES = "Hablas con una IA de Acme. No grabamos."

    root = caller.dial()

    assert root[0].tag == "Say" and root[0].text == "Hablas con una IA de Acme. No grabamos."


# --- Signatures ------------------------------------------------------------------------------------------


def test_a_forged_signature_is_refused_and_nothing_stored(caller: Caller):
    response = caller.post(INBOUND, caller.params(), signature="Zm9yZ2Vk")

    assert response.status_code == 403 and response.json()["error"]["code"] == "invalid_signature"
    assert nothing_stored()


def test_a_missing_signature_is_refused(caller: Caller):
    response = caller.post(INBOUND, caller.params(), signature="")

    assert response.status_code == 403 and response.json()["error"]["code"] == "missing_signature"
    assert nothing_stored()


def test_a_signature_over_other_params_is_refused(caller: Caller):
    signed = sign("http://testserver/api/voice/inbound", caller.params())
    response = caller.post(INBOUND, caller.params(From="+34699999999"), signature=signed)

    assert response.status_code == 403
    assert nothing_stored()


def test_without_an_auth_token_nothing_can_be_verified(caller: Caller, settings):
    settings.TALIA_TWILIO_AUTH_TOKEN = ""

    response = caller.post(INBOUND, caller.params())

    assert response.status_code == 403 and response.json()["error"]["code"] == "signature_unverifiable"
    assert nothing_stored()


def test_behind_a_proxy_the_signature_is_over_the_public_url(caller: Caller, settings):
    settings.TALIA_PUBLIC_BASE_URL = "https://talia.example.com"

    internal = caller.post(INBOUND, caller.params())
    public = caller.post(INBOUND, caller.params(), sign_url="https://talia.example.com/api/voice/inbound")

    assert internal.status_code == 403
    assert public.status_code == 200
    assert VoiceCall.objects.count() == 1


def test_the_query_string_is_part_of_the_signed_url(caller: Caller):
    caller.dial()
    params = caller.params(SpeechResult="Hola")
    signed_without_query = sign("http://testserver/api/voice/gather", params)

    response = caller.post("/api/voice/gather?after=0&silences=0", params, signature=signed_without_query)

    assert response.status_code == 403


def test_with_validation_off_unsigned_calls_are_accepted(caller: Caller, settings):
    settings.TALIA_TWILIO_VALIDATE_SIGNATURES = False

    response = caller.post(INBOUND, caller.params(), signature="")

    parse(response)
    assert VoiceCall.objects.count() == 1


# --- Malformed input --------------------------------------------------------------------------------------


def test_a_call_without_call_sid_or_caller_is_a_400_naming_the_field(caller: Caller):
    no_sid = {key: value for key, value in caller.params().items() if key != "CallSid"}
    no_from = {key: value for key, value in caller.params().items() if key != "From"}

    first = caller.post(INBOUND, no_sid)
    second = caller.post(INBOUND, no_from)

    assert first.status_code == 400 and "CallSid" in first.json()["error"]["fields"]
    assert second.status_code == 400 and "From" in second.json()["error"]["fields"]
    assert nothing_stored()


def test_json_instead_of_a_form_is_a_415(client):
    response = client.post(
        INBOUND,
        {"CallSid": "CA1"},
        content_type="application/json",
        headers={"X-Twilio-Signature": sign("http://testserver/api/voice/inbound", {})},
    )

    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"


def test_get_is_not_allowed(client):
    assert client.get(INBOUND).status_code == 405


def test_answering_a_call_costs_a_bounded_number_of_queries(caller: Caller, django_assert_max_num_queries):
    # The called number's language, contact, identity, conversation, its event, the call, call_started,
    # the last seq, and savepoints.
    with django_assert_max_num_queries(21):
        caller.dial()
    # A retried webhook only reads: the call (with its conversation) and the last seq, in a transaction.
    with django_assert_max_num_queries(4):
        caller.dial()
