"""The analysis stores what it finds through the core's one lead-field writer, never around it."""

from __future__ import annotations

import pytest

from conversations import inbox
from conversations.assistant.tools import give_consent
from conversations.leadfields import write_lead_fields
from conversations.models import Contact, Conversation, Event, Sender
from leads import pipeline
from leads.analysis import analyse

pytestmark = pytest.mark.django_db


def test_an_email_and_phone_found_by_the_analysis_complete_the_lead_once() -> None:
    hello = inbox.receive("web", "session-lucia-0001", "Hola, soy Lucía", locale="es")
    give_consent(hello.contact.pk)
    write_lead_fields(hello.conversation, {"full_name": "Lucía Pérez"})
    inbox.receive("web", "session-lucia-0001", "Escríbeme a lucia@example.com o al 600 123 456")
    inbox.send(hello.conversation, "¡Gracias!", sender=Sender.ASSISTANT)

    before = Contact.objects.get(pk=hello.contact.pk).updated
    outcome = analyse(Conversation.objects.get(pk=hello.conversation.pk))
    analyse(Conversation.objects.get(pk=hello.conversation.pk))

    contact = Contact.objects.get(pk=hello.contact.pk)
    assert (contact.email, contact.phone) == ("lucia@example.com", "+34600123456")
    assert outcome.lead_fields == ["email", "phone"]
    assert contact.updated > before  # saved like any write, not bulk-updated around the model
    # Recorded by the writer, as when a tool stores the details: once, with what was stored.
    event = Event.objects.get(contact=contact, name="lead_captured")
    assert event.payload["email"] == "lucia@example.com"


@pytest.mark.parametrize("channel, identity", [("voice", "+34600111222"), ("web", "session-lead-created-01")])
def test_a_new_card_records_lead_created_once_with_its_channel(channel: str, identity: str) -> None:
    received = inbox.receive(channel, identity, "Quiero un presupuesto", locale="es")
    card, created = pipeline.card_for(received.contact, received.conversation, "assistant")
    again, created_again = pipeline.card_for(received.contact, received.conversation, "assistant")

    assert (created, created_again, again.pk) == (True, False, card.pk)
    recorded = Event.objects.filter(contact=received.contact, name="lead_created")
    assert [(e.payload["card_id"], e.payload["channel"], e.conversation_id) for e in recorded] == [
        (card.pk, channel, received.conversation.pk)
    ]
