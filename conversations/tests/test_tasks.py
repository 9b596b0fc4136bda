"""The assistant turn and delivery tasks, run by a real Celery worker over the real Redis broker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import inbox, state, turns
from conversations.models import AssistantRun, DeliveryStatus, Message, Sender
from conversations.registry import DeliveryError, channels
from conversations.tasks import deliver_message, requeue_unanswered_messages
from talia.testing.plugin import wait_for


def test_inbound_message_on_a_bot_conversation_gets_one_assistant_run(celery_worker):
    received = inbox.receive("web", "session-task-0001", "Hola")

    run = wait_for(lambda: AssistantRun.objects.filter(trigger_message=received.message).first())
    assert run.conversation_id == received.conversation.pk
    assert run.engine == turns.NO_ENGINE
    assert run.status == AssistantRun.Status.SKIPPED
    assert run.finished_at is not None
    # No engine yet: nothing is replied.
    assert received.conversation.messages.count() == 1


def test_a_redelivered_turn_never_answers_twice(db):
    received = inbox.receive("web", "session-task-0002", "Hola")

    first = turns.run_turn(str(received.message.pk))
    second = turns.run_turn(str(received.message.pk))

    assert first is not None and second is None
    assert AssistantRun.objects.filter(trigger_message=received.message).count() == 1


def test_turn_is_silent_while_a_person_has_the_conversation(db, agent):
    received = inbox.receive("web", "session-task-0003", "Hola")
    state.request_handoff(received.conversation, requested_by="contact")

    assert turns.run_turn(str(received.message.pk)) is None
    assert not AssistantRun.objects.exists()


def test_turn_for_a_deleted_message_exits_cleanly(db):
    assert turns.run_turn("00000000-0000-0000-0000-000000000000") is None


def test_lost_enqueues_are_requeued_by_the_sweep(celery_worker):
    received = inbox.receive("web", "session-task-0004", "Hola")
    wait_for(lambda: AssistantRun.objects.filter(trigger_message=received.message).exists())
    # A message whose enqueue was lost: stored long enough ago, never run.
    lost = inbox.receive("web", "session-task-0004", "¿Hola?")
    AssistantRun.objects.filter(trigger_message=lost.message).delete()
    Message.objects.filter(pk=lost.message.pk).update(created=timezone.now() - timedelta(minutes=10))

    assert requeue_unanswered_messages.delay() is not None
    wait_for(lambda: AssistantRun.objects.filter(trigger_message=lost.message).exists())


class RecordingDeliverer:
    """A channel deliverer registered like a channel app would, failing as told."""

    def __init__(self, failures: list[DeliveryError]) -> None:
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
    channels.register("whatsapp", deliverer)
    yield deliverer
    channels.unregister("whatsapp")


def test_outbound_message_is_delivered_after_commit_by_the_channel(celery_worker, whatsapp_deliverer):
    conversation = inbox.receive("whatsapp", "+34600123456", "Hola", external_id="SM-in-1").conversation

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
    deliver_message.apply(args=[str(message.pk)])

    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.FAILED
    assert message.metadata["delivery_error"] == "63016"
    assert message.metadata["delivery_attempts"] == 2
    assert whatsapp_deliverer.sent == []
