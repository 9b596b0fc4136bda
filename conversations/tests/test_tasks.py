"""The assistant turn and delivery tasks, run by a real Celery worker over the real Redis broker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import inbox, state
from conversations.assistant import turns
from conversations.models import AssistantRun, DeliveryStatus, Message, Sender
from conversations.registry import DeliveryError
from conversations.tasks import deliver_message, requeue_unanswered_messages
from talia.testing.fake_channels.channels import swap
from talia.testing.plugin import purge_task_queue, running_worker, wait_for


def test_inbound_message_on_a_bot_conversation_gets_one_assistant_run(celery_worker):
    received = inbox.receive("web", "session-task-0001", "Hola")
    # Recorded with the message, before any worker saw it.
    assert AssistantRun.objects.get(trigger_message=received.message).status == AssistantRun.Status.PENDING

    run = wait_for(
        lambda: AssistantRun.objects.filter(trigger_message=received.message, finished_at__isnull=False).first()
    )
    assert run.conversation_id == received.conversation.pk
    assert (run.status, run.engine) == (AssistantRun.Status.COMPLETED, "offline")
    reply = received.conversation.messages.get(seq=2)
    assert (reply.sender, reply.pk) == (Sender.ASSISTANT, run.reply_message_id)


def test_a_redelivered_turn_never_answers_twice(db):
    received = inbox.receive("web", "session-task-0002", "Hola")

    first = turns.run_turn(str(received.message.pk))
    second = turns.run_turn(str(received.message.pk))

    assert first is not None and second is None
    assert AssistantRun.objects.filter(trigger_message=received.message).count() == 1


def test_a_turn_abandoned_by_a_dead_worker_is_claimed_again_after_its_lease(db):
    received = inbox.receive("web", "session-task-0005", "Hola")
    assert turns.claim_run(str(received.message.pk)) is not None  # this worker "dies" here
    assert turns.run_turn(str(received.message.pk)) is None  # still leased

    AssistantRun.objects.update(started_at=timezone.now() - turns.TURN_LEASE - timedelta(seconds=1))

    run = turns.run_turn(str(received.message.pk))
    assert run is not None
    assert run.status == AssistantRun.Status.COMPLETED


def test_turn_is_silent_when_a_person_took_over_before_it_ran(db, agent):
    received = inbox.receive("web", "session-task-0003", "Hola")
    state.request_handoff(received.conversation, requested_by="contact")

    run = turns.run_turn(str(received.message.pk))

    assert run is not None
    assert run.status == AssistantRun.Status.SKIPPED
    assert run.error == "The conversation is queued."
    assert received.conversation.messages.count() == 1


def test_messages_to_an_agent_are_never_answered_by_the_assistant_later(db, agent):
    conversation = inbox.receive("web", "session-task-0006", "Hola, tengo una duda con un pedido").conversation
    turns.run_turn(str(conversation.messages.get().pk))
    state.request_handoff(conversation, requested_by="contact")
    state.claim_conversation(conversation, agent)
    for_agent = inbox.receive("web", "session-task-0006", "Gracias Ana, mi pedido es el 1234").message
    state.hand_back_to_assistant(conversation)
    Message.objects.update(created=timezone.now() - timedelta(minutes=10))

    assert not AssistantRun.objects.filter(trigger_message=for_agent).exists()
    assert requeue_unanswered_messages() == 0


def test_turn_for_an_unknown_message_exits_cleanly(db):
    assert turns.run_turn("00000000-0000-0000-0000-000000000000") is None


@pytest.mark.django_db(transaction=True)
def test_lost_enqueues_are_requeued_once_and_run():
    purge_task_queue()
    lost = inbox.receive("web", "session-task-0004", "Hola")
    purge_task_queue()  # the enqueue is lost; the pending run stays in the database
    AssistantRun.objects.update(queued_at=timezone.now() - timedelta(minutes=10))

    with running_worker():
        assert requeue_unanswered_messages() == 1
        run = wait_for(
            lambda: AssistantRun.objects.filter(trigger_message=lost.message, finished_at__isnull=False).first()
        )
        # Just requeued: until the interval passes again the sweep leaves pending work alone.
        assert requeue_unanswered_messages() == 0

    assert run.status == AssistantRun.Status.COMPLETED


def test_sweep_does_not_pile_up_copies_while_no_worker_runs(db):
    inbox.receive("web", "session-task-0007", "Hola")
    AssistantRun.objects.update(queued_at=timezone.now() - timedelta(minutes=10))

    assert requeue_unanswered_messages() == 1
    assert requeue_unanswered_messages() == 0


class RecordingDeliverer:
    """A channel deliverer registered like a channel app would, failing as told."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.sent: list[str] = []

    def __call__(self, message: Message) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message.text)
        return f"SM-{message.seq}"


@pytest.fixture
def whatsapp_deliverer():
    deliverer = RecordingDeliverer([])
    with swap("whatsapp", delivery="push", deliverer=deliverer):
        yield deliverer


def test_outbound_message_is_delivered_after_commit_by_the_channel(celery_worker, whatsapp_deliverer, agent):
    # No inbound message, so no assistant turn: the only outbound message is this test's.
    _, conversation = inbox.ensure_conversation("whatsapp", "+34600123456")

    message = inbox.send(conversation, "¡Hola!", sender=Sender.ASSISTANT)

    assert message.delivery_status == DeliveryStatus.PENDING
    wait_for(lambda: Message.objects.get(pk=message.pk).delivery_status == DeliveryStatus.SENT)
    message.refresh_from_db()
    assert message.external_id == f"SM-{message.seq}"
    assert whatsapp_deliverer.sent == ["¡Hola!"]


def test_temporary_delivery_failure_is_retried_and_permanent_one_is_recorded(db, whatsapp_deliverer):
    conversation = inbox.receive("whatsapp", "+34600123456", "Hola", external_id="SM-in-2").conversation
    message = inbox.send(conversation, "¡Hola!", sender=Sender.ASSISTANT)
    whatsapp_deliverer.failures = [DeliveryError("503 from provider"), DeliveryError("63016", permanent=True)]

    # Run the task body the way the worker does, retries included (apply() executes retries inline).
    deliver_message.apply(args=(str(message.pk),))

    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.FAILED
    assert message.delivery_error == "63016"
    assert message.delivery_attempts == 2
    assert whatsapp_deliverer.sent == []


def test_a_crashing_deliverer_is_retried_like_a_temporary_failure(db, whatsapp_deliverer):
    conversation = inbox.receive("whatsapp", "+34600123456", "Hola", external_id="SM-in-3").conversation
    message = inbox.send(conversation, "¡Hola!", sender=Sender.ASSISTANT)
    whatsapp_deliverer.failures = [KeyError("sid")]

    deliver_message.apply(args=(str(message.pk),))

    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.SENT
    assert message.delivery_attempts == 2
    assert whatsapp_deliverer.sent == ["¡Hola!"]


def test_a_delivery_already_sent_is_not_sent_again(db, whatsapp_deliverer):
    conversation = inbox.receive("whatsapp", "+34600123456", "Hola", external_id="SM-in-4").conversation
    message = inbox.send(conversation, "¡Hola!", sender=Sender.ASSISTANT)

    deliver_message.apply(args=(str(message.pk),))
    deliver_message.apply(args=(str(message.pk),))

    assert whatsapp_deliverer.sent == ["¡Hola!"]
