"""inbox.receive() and inbox.send(): every door's way in, safe under concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from conversations import events, inbox, state
from conversations.models import (
    Contact,
    ContactIdentity,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Event,
    Message,
    Sender,
)


def run_concurrently(function: Callable[[int], Any], count: int) -> list[Any]:
    """Run `function(i)` in `count` threads released at the same moment; each uses its own DB connection."""
    barrier = threading.Barrier(count)

    def worker(index: int) -> Any:
        try:
            barrier.wait()
            return function(index)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(worker, range(count)))


def test_first_message_opens_contact_conversation_and_records_events(db):
    received = inbox.receive("whatsapp", "+34600123456", "Hola", {"profile": "Lucía"}, "SM0001", display_name="Lucía")

    assert received.opened and not received.duplicate
    message = received.message
    assert (message.seq, message.direction, message.sender, message.text) == (
        1,
        Direction.INBOUND,
        Sender.CONTACT,
        "Hola",
    )
    assert message.delivery_status == DeliveryStatus.RECEIVED
    assert message.metadata == {"profile": "Lucía"}
    assert received.conversation.status == ConversationStatus.BOT
    assert received.contact.display_name == "Lucía"
    assert ContactIdentity.objects.get(contact=received.contact).value == "+34600123456"
    names = list(Event.objects.filter(conversation=received.conversation).values_list("name", flat=True))
    assert sorted(names) == [events.CONVERSATION_OPENED.name, events.MESSAGE_RECEIVED.name]


def test_next_message_joins_the_open_conversation_with_the_next_number(lucia):
    second = inbox.receive("web", "session-lucia-0001", "¿Y precios?")

    assert not second.opened
    assert second.conversation.pk == lucia.conversation.pk
    assert second.message.seq == 2


def test_locale_is_normalised_and_stored_on_contact_and_message(db):
    received = inbox.receive("web", "session-en-visitor", "Hi there", locale="en-GB")

    assert received.contact.locale == "en"
    assert received.message.metadata["locale"] == "en"
    assert inbox.receive("web", "session-other-01", "Hallo", locale="de").contact.locale == "es"


def test_message_after_close_opens_a_new_conversation(lucia):
    state.close_conversation(lucia.conversation, ended_by="contact")

    again = inbox.receive("web", "session-lucia-0001", "Hola otra vez")

    assert again.opened
    assert again.conversation.pk != lucia.conversation.pk
    assert again.contact.pk == lucia.contact.pk
    assert again.message.seq == 1


@pytest.mark.parametrize(
    ("channel", "identity", "external_id", "error"),
    [
        ("fax", "someone", "", "Unknown channel"),
        ("web", "   ", "", "identity"),
        ("web", "x" * 201, "", "identity"),
        ("web", "session-ok-0001", "x" * 201, "external id"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(db, channel, identity, external_id, error):
    with pytest.raises(inbox.InboxError, match=error):
        inbox.receive(channel, identity, "hello", external_id=external_id)
    assert not Message.objects.exists()


def test_retried_webhook_is_stored_once(db):
    first = inbox.receive("whatsapp", "+34600123456", "Hola", external_id="SM0042")
    retried = inbox.receive("whatsapp", "+34600123456", "Hola", external_id="SM0042")

    assert retried.duplicate
    assert retried.message.pk == first.message.pk
    assert Message.objects.count() == 1
    assert Event.objects.filter(name=events.MESSAGE_RECEIVED.name).count() == 1


def test_same_external_id_on_another_channel_is_another_message(db):
    inbox.receive("whatsapp", "+34600123456", "Hola", external_id="ID-1")
    other = inbox.receive("voice", "+34600123456", "Hola", external_id="ID-1")

    assert not other.duplicate
    assert Message.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_same_external_id_five_times_concurrently_stores_one_row():
    results = run_concurrently(
        lambda i: inbox.receive("whatsapp", "+34600123456", "Hola", external_id="SM-CONCURRENT"), 5
    )

    assert Message.objects.filter(external_id="SM-CONCURRENT").count() == 1
    assert len({r.message.pk for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert Event.objects.filter(name=events.MESSAGE_RECEIVED.name).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_gapless_unique_numbers():
    opening = inbox.receive("web", "session-busy-0001", "first")
    writers, per_writer = 8, 5

    def write(index: int) -> None:
        for n in range(per_writer):
            if index % 2:
                inbox.receive("web", "session-busy-0001", f"visitor {index}.{n}")
            else:
                inbox.send(opening.conversation, f"assistant {index}.{n}", sender=Sender.ASSISTANT)

    run_concurrently(write, writers)

    seqs = list(Message.objects.filter(conversation=opening.conversation).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, writers * per_writer + 2))
    assert Conversation.objects.get(pk=opening.conversation.pk).last_seq == len(seqs)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_messages_from_one_contact_open_one_conversation():
    results = run_concurrently(lambda i: inbox.receive("web", "session-new-visitor", f"hello {i}"), 6)

    assert Contact.objects.count() == 1
    assert Conversation.objects.count() == 1
    assert sum(r.opened for r in results) == 1
    assert sorted(r.message.seq for r in results) == [1, 2, 3, 4, 5, 6]


def test_send_stores_outbound_message_and_event(lucia, agent):
    message = inbox.send(lucia.conversation, "¡Hola! Soy Ana.", sender=Sender.AGENT, agent=agent)

    assert (message.seq, message.direction, message.agent) == (2, Direction.OUTBOUND, agent)
    # Web chat has no deliverer: the realtime push is the delivery.
    assert message.delivery_status == DeliveryStatus.SENT
    assert Event.objects.filter(name=events.MESSAGE_SENT.name, payload__message_id=str(message.pk)).exists()


def test_send_to_a_closed_conversation_is_refused(lucia):
    state.close_conversation(lucia.conversation, ended_by="agent")

    with pytest.raises(inbox.ConversationClosedError):
        inbox.send(lucia.conversation, "¿Sigues ahí?", sender=Sender.ASSISTANT)
    assert lucia.conversation.messages.count() == 1


def test_contact_messages_cannot_be_sent_as_outbound(lucia):
    with pytest.raises(inbox.InboxError):
        inbox.send(lucia.conversation, "fake", sender=Sender.CONTACT)
