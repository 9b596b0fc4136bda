"""Replies over WhatsApp: the real twilio SDK against the fake Twilio, retries, permanent errors, long texts
split in order, and the 24-hour window with and without a template."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_whatsapp.services import split_sentences
from channels_whatsapp.tests.conftest import Twilio, text
from conversations import inbox
from conversations.models import AssistantRun, Conversation, DeliveryStatus, Message, Sender
from conversations.tasks import deliver_message
from talia.testing.plugin import wait_for


def conversation_with(twilio: Twilio, body: str = "Hola", wa_id: str = "34600123456") -> Conversation:
    assert twilio.message(text(body, wa_id=wa_id)).status_code == 200
    return Conversation.objects.get(contact__identities__value=wa_id)


def deliver(message: Message) -> Message:
    """Run the core's delivery task the way the worker does, retries included (apply() runs them inline)."""
    deliver_message.apply(args=(str(message.pk),))
    message.refresh_from_db()
    return message


def test_an_agents_reply_goes_out_through_twilio_with_the_status_callback(db, twilio: Twilio, settings, agent):
    settings.TALIA_PUBLIC_BASE_URL = twilio.base = "https://chat.example.com"
    conversation = conversation_with(twilio)

    message = deliver(inbox.send(conversation, "¡Hola! Soy Ana.", sender=Sender.AGENT, agent=agent))

    [sent] = twilio.fake.sent
    assert sent["To"] == "whatsapp:+34600123456"
    assert sent["From"] == "whatsapp:+14155238886"
    assert sent["Body"] == "¡Hola! Soy Ana."
    assert sent["StatusCallback"] == "https://chat.example.com/api/v1/whatsapp/status"
    assert (message.delivery_status, message.external_id) == (DeliveryStatus.SENT, sent["sid"])


def test_a_messaging_service_and_an_api_key_may_be_used_instead(db, twilio: Twilio, settings, agent):
    settings.TALIA_TWILIO_MESSAGING_SERVICE_SID = "MG" + "1" * 32
    settings.TALIA_TWILIO_API_KEY_SID, settings.TALIA_TWILIO_API_KEY_SECRET = twilio.fake.add_api_key()
    conversation = conversation_with(twilio)

    message = deliver(inbox.send(conversation, "Hola", sender=Sender.AGENT, agent=agent))

    [sent] = twilio.fake.sent
    assert sent["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in sent
    assert twilio.fake.requests[-1].auth == (settings.TALIA_TWILIO_API_KEY_SID, settings.TALIA_TWILIO_API_KEY_SECRET)
    assert message.delivery_status == DeliveryStatus.SENT


@pytest.mark.parametrize("status", [500, 429])
def test_a_twilio_error_that_a_retry_can_fix_is_retried_then_sent(db, twilio: Twilio, agent, status):
    conversation = conversation_with(twilio)
    twilio.fake.fail_next(2, status=status)

    message = deliver(inbox.send(conversation, "Hola", sender=Sender.AGENT, agent=agent))

    assert message.delivery_status == DeliveryStatus.SENT
    assert message.delivery_attempts == 3
    assert len(twilio.fake.sent) == 1 and message.external_id == twilio.fake.sent[0]["sid"]


def test_a_send_that_times_out_is_retried(db, twilio: Twilio, agent, settings):
    settings.TALIA_TWILIO_TIMEOUT_S = 1
    conversation = conversation_with(twilio)
    twilio.fake.slow_next(1, seconds=3)

    message = deliver(inbox.send(conversation, "Hola", sender=Sender.AGENT, agent=agent))

    assert message.delivery_status == DeliveryStatus.SENT and message.delivery_attempts == 2
    # The slow send may have been created at Twilio too (at-least-once, as the core documents).
    assert message.external_id == twilio.fake.sent[-1]["sid"]


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(21211, "The 'To' number is not a valid phone number."), (21610, "The contact has opted out (replied STOP).")],
)
def test_a_permanent_twilio_error_is_recorded_with_its_meaning_and_not_retried(
    db, twilio: Twilio, agent, code, meaning
):
    conversation = conversation_with(twilio)
    twilio.fake.fail_next(1, status=400, code=code)

    message = deliver(inbox.send(conversation, "Hola", sender=Sender.AGENT, agent=agent))

    assert message.delivery_status == DeliveryStatus.FAILED
    assert message.delivery_error == f"{code}: {meaning}"
    assert message.delivery_attempts == 1 and twilio.fake.sent == []


def test_without_credentials_a_reply_fails_saying_so(db, twilio: Twilio, settings, agent):
    conversation = conversation_with(twilio)
    settings.TALIA_TWILIO_AUTH_TOKEN = settings.TALIA_TWILIO_ACCOUNT_SID = ""

    message = deliver(inbox.send(conversation, "Hola", sender=Sender.AGENT, agent=agent))

    assert message.delivery_status == DeliveryStatus.FAILED
    assert "Twilio is not configured" in message.delivery_error
    assert twilio.fake.requests == []


def test_a_2500_character_reply_is_sent_as_parts_in_order(celery_worker, twilio: Twilio, agent):
    conversation = conversation_with(twilio)
    wait_for(lambda: Message.objects.filter(sender=Sender.ASSISTANT, delivery_status=DeliveryStatus.SENT).exists())
    long_text = " ".join(f"Esta es la frase número {n}, con la información que pediste." for n in range(1, 43))
    assert 2500 <= len(long_text) <= 2600

    first = inbox.send(conversation, long_text, sender=Sender.AGENT, agent=agent)

    parts = list(Message.objects.filter(conversation=conversation, seq__gte=first.seq).order_by("seq"))
    assert [p.metadata["part"] for p in parts] == [[1, 2], [2, 2]]
    assert all(len(p.text) <= 1600 and p.text.endswith(".") for p in parts)
    assert " ".join(p.text for p in parts) == long_text
    wait_for(
        lambda: all(
            m.delivery_status == DeliveryStatus.SENT for m in Message.objects.filter(pk__in=[p.pk for p in parts])
        )
    )
    bodies = [sent["Body"] for sent in twilio.fake.sent[1:]]  # after the assistant's greeting
    assert bodies == [p.text for p in parts]
    stored = {m.pk: m.external_id for m in Message.objects.filter(pk__in=[p.pk for p in parts])}
    assert [stored[p.pk] for p in parts] == [sent["sid"] for sent in twilio.fake.sent[1:]]


def test_when_a_part_cannot_be_sent_the_rest_of_the_text_is_not_sent_either(db, twilio: Twilio, agent):
    conversation = conversation_with(twilio)
    twilio.fake.fail_next(1, status=400, code=21211)

    first = deliver(inbox.send(conversation, "Una frase. " * 400, sender=Sender.AGENT, agent=agent))

    rest = Message.objects.filter(conversation=conversation, seq__gt=first.seq)
    assert first.delivery_status == DeliveryStatus.FAILED and rest.count() >= 1
    assert {m.delivery_status for m in rest} == {DeliveryStatus.FAILED}
    assert all(m.delivery_error.startswith("Not sent: part 1 of") for m in rest)
    assert twilio.fake.sent == []


def test_splitting_prefers_sentence_ends_and_cuts_words_only_when_it_must():
    assert split_sentences("Corto.", 1600) == ["Corto."]
    assert split_sentences("Uno. Dos. Tres.", 10) == ["Uno. Dos.", "Tres."]
    assert split_sentences("¿Sí? ¡No! Vale…  Bien.", 12) == ["¿Sí? ¡No!", "Vale…  Bien."]
    long_word = "a" * 25
    assert split_sentences(f"Hola. {long_word}", 10) == ["Hola.", "a" * 10, "a" * 10, "a" * 5]


# --- The 24-hour window ---------------------------------------------------------------------------------


def last_wrote(conversation: Conversation, hours_ago: float) -> None:
    Message.objects.filter(conversation=conversation).update(created=timezone.now() - timedelta(hours=hours_ago))


def test_inside_the_window_a_reply_is_free_form(db, twilio: Twilio, agent):
    conversation = conversation_with(twilio)
    last_wrote(conversation, 23.5)

    message = deliver(inbox.send(conversation, "Hola", sender=Sender.AGENT, agent=agent))

    assert message.delivery_status == DeliveryStatus.SENT and twilio.fake.sent[0]["Body"] == "Hola"


def test_outside_the_window_without_a_template_an_agents_message_is_held_and_says_why(db, twilio: Twilio, agent):
    conversation = conversation_with(twilio)
    last_wrote(conversation, 25)

    message = deliver(inbox.send(conversation, "¿Seguimos?", sender=Sender.AGENT, agent=agent))

    assert message.delivery_status == DeliveryStatus.FAILED
    assert message.delivery_error.startswith("Held: outside WhatsApp's 24-hour window; the contact last wrote at ")
    assert message.delivery_attempts == 1 and twilio.fake.sent == []


def test_outside_the_window_an_agents_message_goes_as_the_approved_template(db, twilio: Twilio, settings, agent):
    settings.TALIA_WHATSAPP_TEMPLATE_SID = "HX" + "a" * 32
    conversation = conversation_with(twilio)
    last_wrote(conversation, 30)

    message = deliver(inbox.send(conversation, "¿Seguimos con la propuesta?", sender=Sender.AGENT, agent=agent))

    [sent] = twilio.fake.sent
    assert sent["ContentSid"] == "HX" + "a" * 32 and "Body" not in sent
    assert json.loads(sent["ContentVariables"]) == {"1": "¿Seguimos con la propuesta?"}
    assert message.delivery_status == DeliveryStatus.SENT


def test_outside_the_window_the_assistant_never_sends_a_template(db, twilio: Twilio, settings):
    settings.TALIA_WHATSAPP_TEMPLATE_SID = "HX" + "a" * 32
    conversation = conversation_with(twilio)
    last_wrote(conversation, 30)

    message = deliver(inbox.send(conversation, "Hola", sender=Sender.ASSISTANT))

    assert message.delivery_status == DeliveryStatus.FAILED and twilio.fake.sent == []


def test_five_concurrent_deliveries_of_one_message_store_it_once_and_answer_once(celery_worker, twilio: Twilio):
    from conversations.tests.test_inbox import run_concurrently

    params = text("Hola, ¿estás disponible?")

    answers = run_concurrently(lambda _: twilio.message(params).status_code, 5)

    assert answers == [200] * 5
    inbound = Message.objects.get(external_id=params["MessageSid"])
    run = wait_for(
        lambda: AssistantRun.objects.filter(trigger_message=inbound, status=AssistantRun.Status.COMPLETED).first()
    )
    reply = wait_for(
        lambda: Message.objects.filter(pk=run.reply_message_id, delivery_status=DeliveryStatus.SENT).first()
    )
    assert Message.objects.filter(sender=Sender.CONTACT).count() == 1
    assert AssistantRun.objects.count() == 1
    assert Message.objects.filter(sender=Sender.ASSISTANT).count() == 1
    assert [sent["sid"] for sent in twilio.fake.sent] == [reply.external_id]
