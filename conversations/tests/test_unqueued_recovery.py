"""Work whose enqueue failed or was skipped (Redis down, its breaker open) is marked not queued and the
workers' recovery sweep queues it within seconds of Redis answering, not minutes later.

The breaker is opened the way a real outage opens it (a Redis TimeoutError reported to it); everything
else (database, broker, worker) is real.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from conversations import inbox
from conversations.models import AssistantRun, DeliveryStatus, Message, Sender
from conversations.tasks import REQUEUE_HORIZON, claim_unqueued_work, requeue_unanswered_messages
from talia.redis_client import breaker
from talia.testing.plugin import purge_task_queue, wait_for


def redis_fails() -> None:
    breaker.record_failure(redis.TimeoutError("Timeout reading from socket"), "test")


@pytest.mark.django_db(transaction=True)
def test_a_skipped_turn_enqueue_marks_the_run_not_queued_and_one_sweep_takes_it():
    purge_task_queue()
    redis_fails()
    received = inbox.receive("web", "session-unqueued-01", "Hola")

    run = AssistantRun.objects.get(trigger_message=received.message)
    assert (run.status, run.queued_at) == (AssistantRun.Status.PENDING, None)

    assert claim_unqueued_work() == ([received.message.pk], [])
    assert claim_unqueued_work() == ([], [])  # a second worker's sweep finds nothing left
    assert AssistantRun.objects.get(pk=run.pk).queued_at is not None


@pytest.mark.django_db(transaction=True)
def test_unqueued_work_older_than_the_horizon_is_left_alone():
    redis_fails()
    inbox.receive("web", "session-unqueued-02", "Hola")
    AssistantRun.objects.update(created=timezone.now() - REQUEUE_HORIZON - timedelta(minutes=1))

    assert claim_unqueued_work() == ([], [])


@pytest.mark.django_db(transaction=True)
def test_the_requeue_sweep_is_the_backstop_for_unqueued_turns():
    purge_task_queue()
    redis_fails()
    inbox.receive("web", "session-unqueued-03", "Hola")
    breaker.reset()

    assert requeue_unanswered_messages() == 1
    assert requeue_unanswered_messages() == 0


def test_a_turn_stored_while_redis_failed_is_answered_by_the_workers_own_sweep(celery_worker):
    """No requeue sweep, no beat: the worker's keeper runs recover_abandoned_work every TTL/3 seconds."""
    redis_fails()
    received = inbox.receive("web", "session-unqueued-04", "Hola")
    assert AssistantRun.objects.get(trigger_message=received.message).queued_at is None
    breaker.reset()  # Redis answers again

    run = wait_for(
        lambda: AssistantRun.objects.filter(trigger_message=received.message, finished_at__isnull=False).first(),
        timeout=40,
    )
    assert run.status == AssistantRun.Status.COMPLETED
    assert received.conversation.messages.filter(sender=Sender.ASSISTANT).count() == 1


def test_a_delivery_stored_while_redis_failed_is_sent_by_the_workers_own_sweep(celery_worker, whatsapp):
    _, conversation = inbox.ensure_conversation("whatsapp", "+34600999888")
    redis_fails()
    message = inbox.send(conversation, "¡Hola!", sender=Sender.ASSISTANT)
    pending = Message.objects.get(pk=message.pk)
    assert (pending.delivery_status, pending.delivery_queued_at) == (DeliveryStatus.PENDING, None)
    breaker.reset()

    wait_for(lambda: Message.objects.get(pk=message.pk).delivery_status == DeliveryStatus.SENT, timeout=40)
    assert whatsapp.sent == ["¡Hola!"]
