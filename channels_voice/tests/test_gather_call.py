"""Gather-mode calls end to end: what the caller says goes through the inbox and the real assistant turn
(the offline engine, in the real Celery worker), the reply is spoken and TalIA listens again; slow
replies are held with a phrase and a Redirect; silence twice ends the call; a person takes over."""

from __future__ import annotations

import pytest

from channels_voice.models import VoiceCall
from channels_voice.tests.conftest import Caller, child, conversation_of, parse
from conversations import state
from conversations.models import ConversationStatus, HandoffRequest, Message, Sender
from talia.testing.plugin import purge_task_queue, running_worker


def locale_of(caller: Caller) -> str:
    return VoiceCall.objects.get(call_sid=caller.call_sid).locale


def spoken(heard) -> str:
    return " ".join(heard.said)


@pytest.mark.django_db(transaction=True)
def test_a_spanish_caller_gives_name_and_email_and_asks_for_a_person(caller: Caller, celery_worker, settings):
    settings.TALIA_VOICE_TURN_WAIT_S = 12
    caller.dial()

    hello = caller.speak("Hola, buenas tardes")
    assert "asistente virtual" in spoken(hello) and "¿Estás de acuerdo?" in spoken(hello)
    assert hello.listening_in() == "es-MX"

    consent = caller.speak("Sí, vale")
    assert "nombre" in spoken(consent)

    name = caller.speak("Me llamo Ana Pérez")
    assert "Ana" in spoken(name) and "correo" in spoken(name)

    email = caller.speak("ana.perez@example.com")
    assert email.gather is not None

    person = caller.speak("¿Me pasas con una persona, por favor?")
    assert person.hung_up and person.gather is None
    assert "te devolverá la llamada" in spoken(person)

    conversation = conversation_of(caller.call_sid)
    contact = conversation.contact
    assert (contact.full_name, contact.email) == ("Ana Pérez", "ana.perez@example.com")
    assert conversation.status == ConversationStatus.QUEUED
    messages = list(Message.objects.filter(conversation=conversation).order_by("seq"))
    callers = [m.text for m in messages if m.sender == Sender.CONTACT]
    assert callers == [
        "Hola, buenas tardes",
        "Sí, vale",
        "Me llamo Ana Pérez",
        "ana.perez@example.com",
        "¿Me pasas con una persona, por favor?",
    ]
    assert all(m.channel == "voice" for m in messages)
    # Every reply the caller heard is the assistant's stored message, in order.
    replies = [m.text for m in messages if m.sender == Sender.ASSISTANT]
    heard = [hello, consent, name, email]
    assert [h.said[-1] for h in heard] == replies[:4]


@pytest.mark.django_db(transaction=True)
def test_a_retried_gather_webhook_stores_the_speech_once(caller: Caller, celery_worker, settings):
    settings.TALIA_VOICE_TURN_WAIT_S = 12
    caller.dial()
    action = caller.action

    first = caller.speak("Hola")
    caller.action = action  # Twilio retries the same request
    second = caller.speak("Hola")

    assert Message.objects.filter(sender=Sender.CONTACT).count() == 1
    assert first.said[-1] == second.said[-1]
    assert Message.objects.filter(sender=Sender.ASSISTANT).count() == 1


@pytest.mark.django_db(transaction=True)
def test_with_no_worker_the_caller_hears_a_holding_phrase_then_the_reply(caller: Caller, settings):
    purge_task_queue()
    settings.TALIA_VOICE_TURN_WAIT_S = 0  # one look, no wait: no worker runs, so no reply yet
    caller.dial()

    held = parse(caller.post(caller.action, caller.params(SpeechResult="Hola", Confidence="0.9")))

    assert [element.tag for element in held] == ["Say", "Redirect"]
    assert held[0].text == "Un momento, por favor." and held[0].get("language") == "es-MX"
    target = child(held, "Redirect").text or ""
    assert target.startswith("/api/voice/wait?") and child(held, "Redirect").get("method") == "POST"
    assert Message.objects.filter(sender=Sender.CONTACT, text="Hola").exists()

    settings.TALIA_VOICE_TURN_WAIT_S = 12
    with running_worker():
        answered = parse(caller.post(target, caller.params()))
        while (again := answered.find("Redirect")) is not None:  # the worker may take more than one wait
            answered = parse(caller.post(again.text or "", caller.params()))

    reply = Message.objects.get(sender=Sender.ASSISTANT)
    assert answered[0].tag == "Say" and answered[0].text == reply.text
    assert answered.find("Gather") is not None


@pytest.mark.django_db(transaction=True)
def test_a_reply_that_never_comes_ends_in_asking_again_not_in_endless_holding(caller: Caller, settings):
    purge_task_queue()
    settings.TALIA_VOICE_TURN_WAIT_S = 0
    caller.dial()

    heard = caller.speak("Hola")

    assert heard.redirects == 2
    assert heard.said == ["Un momento, por favor.", "Un momento, por favor.", heard.said[-1]]
    assert "repetir" in heard.said[-1] and heard.gather is not None


@pytest.mark.django_db
def test_silence_twice_ends_the_call_politely(caller: Caller):
    caller.dial()

    first = caller.speak("")
    assert "¿Sigues ahí?" in spoken(first) and first.gather is not None

    second = caller.speak("")
    assert second.hung_up and "Gracias por llamar" in spoken(second)
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_speech_after_one_silence_starts_the_count_again(caller: Caller, settings):
    settings.TALIA_VOICE_TURN_WAIT_S = 0
    caller.dial()
    caller.speak("")
    caller.speak("Hola")  # held: no worker; the next Gather after the holding rounds counts from zero

    again = caller.speak("")

    assert not again.hung_up and "¿Sigues ahí?" in spoken(again)


@pytest.mark.django_db
def test_a_conversation_with_a_person_tells_the_caller_they_will_be_called_back(caller: Caller):
    caller.dial()
    state.request_handoff(conversation_of(caller.call_sid), requested_by=HandoffRequest.RequestedBy.CONTACT)

    heard = caller.speak("¿Hay alguien?")

    assert heard.hung_up and "te devolverá la llamada" in spoken(heard)
    assert Message.objects.filter(sender=Sender.CONTACT, text="¿Hay alguien?").exists()


@pytest.mark.django_db
def test_with_a_transfer_number_the_call_is_dialled_through(caller: Caller, settings):
    settings.TALIA_VOICE_TRANSFER_NUMBER = "+34910111222"
    caller.dial()
    state.request_handoff(conversation_of(caller.call_sid), requested_by=HandoffRequest.RequestedBy.CONTACT)

    heard = caller.speak("Quiero hablar con alguien")

    assert child(heard.last, "Dial").text == "+34910111222"
    tags = [element.tag for element in heard.last]
    assert tags.index("Dial") < tags.index("Hangup")


@pytest.mark.django_db
def test_an_english_caller_is_answered_in_english(client, settings):
    settings.TALIA_VOICE_TURN_WAIT_S = 0
    caller = Caller(client, number="+447700900123")
    caller.dial()

    heard = caller.speak("Hello")

    assert heard.said[0] == "One moment, please." and heard.listening_in() == "en-US"
    assert Message.objects.get(sender=Sender.CONTACT).metadata["locale"] == "en"


@pytest.mark.django_db
def test_a_caller_who_asks_for_english_is_answered_and_heard_in_english(caller: Caller, settings):
    settings.TALIA_VOICE_TURN_WAIT_S = 0
    caller.dial()

    heard = caller.speak("English, please.")

    assert heard.said[0] == "One moment, please." and heard.listening_in() == "en-US"
    assert locale_of(caller) == "en" and conversation_of(caller.call_sid).contact.locale == "en"
    # A sentence that merely mentions the language changes nothing.
    caller.speak("Quiero clases de inglés")
    assert locale_of(caller) == "en"
    back = caller.speak("En español, por favor")
    assert back.listening_in() == "es-MX" and locale_of(caller) == "es"


@pytest.mark.django_db
def test_malformed_turns_are_4xx_json(caller: Caller):
    caller.dial()
    unknown = Caller(caller.client)

    bad_query = caller.post("/api/voice/gather?after=x", caller.params(SpeechResult="Hola"))
    bad_confidence = caller.post("/api/voice/gather?after=0", caller.params(SpeechResult="Hola", Confidence="alto"))
    never_called = unknown.post("/api/voice/gather?after=0", unknown.params(SpeechResult="Hola"))
    no_sid = caller.post("/api/voice/wait?after=0", {"SpeechResult": "Hola"})

    assert bad_query.status_code == 400 and "after" in bad_query.json()["error"]["fields"]
    assert bad_confidence.status_code == 400 and "Confidence" in bad_confidence.json()["error"]["fields"]
    assert never_called.status_code == 404 and never_called.json()["error"]["code"] == "unknown_call"
    assert no_sid.status_code == 400 and "CallSid" in no_sid.json()["error"]["fields"]
    assert not Message.objects.exists()
