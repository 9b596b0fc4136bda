"""Channels are plugged in: a channel app registers a ChannelSpec, and the core validates, delivers and
records provider statuses through it, with no edit in `conversations`.

The "fake" channel comes from the test-only app talia.testing.fake_channels (in INSTALLED_APPS only in
tests); its deliverer records what it sends or raises what a test queued. Delivery runs on the real
Celery worker over the real Redis broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core import checks
from django.urls import reverse
from django.utils import translation

from conversations import inbox
from conversations.delivery import record_status
from conversations.models import Contact, DeliveryStatus, Message, Sender
from conversations.realtime import MONITOR_GROUP, staff_group
from conversations.registry import ChannelSpec, DeliveryError, channel_specs, split_words
from conversations.tasks import deliver_message
from conversations.tests.console_helpers import console_socket, next_of, ready, staff_socket
from talia.testing.fake_channels.channels import FAKE, FakeDeliverer, deliverer, fake_spec, plugged
from talia.testing.plugin import wait_for


@pytest.fixture
def fake(db: None) -> Iterator[FakeDeliverer]:
    deliverer.reset()
    with plugged(fake_spec()):
        yield deliverer
    deliverer.reset()


def status_of(message: Message) -> tuple[str, str]:
    message.refresh_from_db()
    return message.delivery_status, message.delivery_error


def sent_message(fake: FakeDeliverer, text: str = "¡Hola!") -> Message:
    """An outbound message on the fake channel that its deliverer accepted (provider id FAKE-<seq>)."""
    _, conversation = inbox.ensure_conversation(FAKE, "+34600999000")
    message = inbox.send(conversation, text, sender=Sender.ASSISTANT)
    deliver_message.apply(args=(str(message.pk),))
    message.refresh_from_db()
    assert (message.delivery_status, message.external_id) == (DeliveryStatus.SENT, f"FAKE-{message.seq}")
    return message


# --- The registry -------------------------------------------------------------------------------------


def test_web_chat_is_plugged_in_by_its_own_app():
    web = channel_specs.get("web")
    assert web is not None
    assert (web.delivery, web.deliverer, web.waits_for_reply) == ("pull", None, True)
    with translation.override("en"):
        assert str(web.label) == "Web chat"


def test_an_unregistered_channel_opens_nothing(db):
    with pytest.raises(inbox.InboxError, match="Unknown channel"):
        inbox.receive("pigeon", "+34600999000", "Hola")
    with pytest.raises(inbox.InboxError, match="Unknown channel"):
        inbox.ensure_conversation("pigeon", "+34600999000")
    assert not Contact.objects.exists()


def test_a_registered_channel_opens_conversations_labelled_by_its_spec(fake):
    received = inbox.receive(FAKE, "+34600999000", "Hola")

    assert received.conversation.channel == FAKE
    assert (received.conversation.channel_label, received.conversation.channel_icon) == ("Fake", "🧪")


def test_two_specs_cannot_claim_one_name():
    with pytest.raises(Exception, match="already registered"):
        channel_specs.register(ChannelSpec(name="web", label="Other", icon="", delivery="pull"))


def test_a_spec_cuts_long_texts_to_its_maximum_length():
    spec = fake_spec(max_length=12)
    parts = spec.parts("Tenemos planes para empresas")
    assert parts == ["Tenemos", "planes para", "empresas"]
    assert all(len(part) <= 12 for part in parts)
    assert fake_spec().parts("x" * 5000) == ["x" * 5000]
    assert split_words("abcdefghij", 4) == ["abcd", "efgh", "ij"]


# --- A pushed channel without a deliverer ------------------------------------------------------------


def test_a_pushed_channel_without_a_deliverer_fails_the_system_check():
    assert not [error for error in checks.run_checks() if error.id == "conversations.E001"]

    with plugged(fake_spec(deliverer=None)):
        errors = [error for error in checks.run_checks() if error.id == "conversations.E001"]

    assert len(errors) == 1
    assert "'fake'" in errors[0].msg


def test_a_message_no_deliverer_can_take_is_failed_with_a_reason_never_sent(db):
    with plugged(fake_spec(deliverer=None)):
        _, conversation = inbox.ensure_conversation(FAKE, "+34600999000")
        message = inbox.send(conversation, "¡Hola!", sender=Sender.ASSISTANT)

    status, error = status_of(message)
    assert status == DeliveryStatus.FAILED
    assert "no deliverer" in error
    assert message.delivery_queued_at is None  # nothing queued for the workers


def test_a_pending_message_whose_deliverer_went_away_is_failed_not_left_pending(fake):
    _, conversation = inbox.ensure_conversation(FAKE, "+34600999000")
    message = inbox.send(conversation, "¡Hola!", sender=Sender.ASSISTANT)

    with plugged(fake_spec(deliverer=None)):
        deliver_message.apply(args=(str(message.pk),))

    status, error = status_of(message)
    assert status == DeliveryStatus.FAILED
    assert "No deliverer" in error
    assert fake.sent == []


# --- End to end through inbox and the worker ----------------------------------------------------------


def test_the_assistants_reply_is_delivered_by_the_channels_deliverer(celery_worker, fake):
    received = inbox.receive(FAKE, "+34600999000", "Hola, ¿tienen planes para empresas?", locale="es")

    reply = wait_for(
        lambda: Message.objects.filter(
            conversation=received.conversation, sender=Sender.ASSISTANT, delivery_status=DeliveryStatus.SENT
        ).first()
    )
    assert reply.external_id == f"FAKE-{reply.seq}"
    assert fake.sent == [reply.text]


def test_a_temporary_failure_is_retried_by_the_worker(celery_worker, fake, agent):
    fake.failures.append(DeliveryError("503 from the provider"))
    _, conversation = inbox.ensure_conversation(FAKE, "+34600999000")

    message = inbox.send(conversation, "¿Seguimos?", sender=Sender.AGENT, agent=agent)

    wait_for(lambda: status_of(message)[0] == DeliveryStatus.SENT, timeout=60)
    message.refresh_from_db()
    assert (message.delivery_attempts, message.delivery_error) == (2, "")
    assert fake.sent == ["¿Seguimos?"]


def test_a_permanent_failure_is_recorded_with_its_reason(celery_worker, fake, agent, listen):
    fake.failures.append(DeliveryError("63016: outside the reply window", permanent=True))
    _, conversation = inbox.ensure_conversation(FAKE, "+34600999000")
    staff = listen(staff_group(conversation.pk))

    message = inbox.send(conversation, "¿Seguimos?", sender=Sender.AGENT, agent=agent)

    wait_for(lambda: status_of(message)[0] == DeliveryStatus.FAILED)
    assert status_of(message) == (DeliveryStatus.FAILED, "63016: outside the reply window")
    assert fake.sent == []
    pushed = staff.receive()
    assert pushed is not None
    assert (pushed["type"], pushed["message_id"], pushed["status"]) == ("message.status", str(message.pk), "failed")
    assert pushed["error"] == "63016: outside the reply window"


# --- Provider callbacks: record_status ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # pushes go out after commit
def test_callbacks_in_order_move_the_message_forward_and_tell_the_staff(fake, listen):
    message = sent_message(fake)
    staff, monitor = listen(staff_group(message.conversation_id)), listen(MONITOR_GROUP)

    assert record_status(FAKE, message.external_id, "delivered") == "updated"
    assert status_of(message)[0] == DeliveryStatus.DELIVERED
    assert record_status(FAKE, message.external_id, "read") == "updated"
    assert status_of(message)[0] == DeliveryStatus.READ

    for listener in (staff, monitor):
        events = [listener.receive(), listener.receive()]
        assert [(e or {}).get("status") for e in events] == ["delivered", "read"]
        assert all((e or {}).get("type") == "message.status" for e in events)


def test_repeated_and_late_callbacks_change_nothing(fake):
    message = sent_message(fake)
    assert record_status(FAKE, message.external_id, "read") == "updated"

    # Twilio-style: "delivered" and "sent" arrive after "read", and "read" twice.
    assert record_status(FAKE, message.external_id, "delivered") == "unchanged"
    assert record_status(FAKE, message.external_id, "sent") == "unchanged"
    assert record_status(FAKE, message.external_id, "queued") == "unchanged"
    assert record_status(FAKE, message.external_id, "read") == "unchanged"
    # A failure reported after the phone had it is stale.
    assert record_status(FAKE, message.external_id, "failed", "30008", "Unknown error") == "unchanged"

    assert status_of(message) == (DeliveryStatus.READ, "")


def test_failed_and_undelivered_are_terminal_and_carry_the_providers_error(fake):
    first = sent_message(fake, "uno")
    assert record_status(FAKE, first.external_id, "undelivered", "30005", "Unknown destination") == "updated"
    assert record_status(FAKE, first.external_id, "delivered") == "unchanged"
    assert record_status(FAKE, first.external_id, "read") == "unchanged"
    assert status_of(first) == (DeliveryStatus.UNDELIVERED, "30005: Unknown destination")

    second = sent_message(fake, "dos")
    assert record_status(FAKE, second.external_id, "failed", error_code="63016") == "updated"
    assert record_status(FAKE, second.external_id, "undelivered", "30005") == "unchanged"
    assert status_of(second) == (DeliveryStatus.FAILED, "63016")


def test_a_callback_is_matched_by_channel_and_provider_id_only(fake):
    message = sent_message(fake)

    assert record_status(FAKE, "FAKE-unknown", "delivered") == "unknown"
    assert record_status("whatsapp", message.external_id, "delivered") == "unknown"
    assert record_status(FAKE, "", "delivered") == "unknown"
    assert status_of(message)[0] == DeliveryStatus.SENT
    with pytest.raises(ValueError, match="Not a delivery status"):
        record_status(FAKE, message.external_id, "pending")


# --- The console shows it -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_watching_console_and_the_monitor_hear_of_a_status_over_their_sockets(fake, make_agent):
    sara = await sync_to_async(make_agent)("sara", is_staff=True)
    message = await sync_to_async(sent_message)(fake)
    console = await ready(await sync_to_async(console_socket)(sara))
    monitor = await ready(await sync_to_async(staff_socket)(sara, "/ws/monitor/"))
    await console.send_json_to({"type": "watch", "conversation_id": str(message.conversation_id)})
    await next_of(console, "watching")

    await sync_to_async(record_status)(FAKE, message.external_id, "undelivered", "30005", "Unknown destination")

    for socket in (console, monitor):
        event = await next_of(socket, "message.status")
        assert (event["message_id"], event["status"]) == (str(message.pk), "undelivered")
        assert event["error"] == "30005: Unknown destination"
        await socket.disconnect()


def test_the_conversation_page_shows_the_status_and_the_error_on_the_message(fake, client, django_user_model):
    message = sent_message(fake)
    record_status(FAKE, message.external_id, "failed", "63016", "Outside the reply window")
    client.force_login(django_user_model.objects.create_user("sara", is_staff=True))

    body: Any = client.get(
        reverse("console-conversation", args=[message.conversation_id]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()

    assert f'data-id="{message.pk}"' in body
    assert 'data-delivery="failed"' in body
    assert '<span class="delivery">Failed</span>' in body
    assert "63016: Outside the reply window" in body
    assert "🧪" in body  # the channel's icon, from its spec
