"""Celery tasks of the conversation core. Thin: they take ids and call a service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from conversations import delivery, turns
from conversations.models import ConversationStatus, DeliveryStatus, Direction, Message, Sender

logger = logging.getLogger(__name__)

# Anything older than this is left alone by the requeue sweep: a stale backlog is not worth answering.
REQUEUE_HORIZON = timedelta(hours=6)
REQUEUE_BATCH = 200


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def run_assistant_turn(message_id: str) -> None:
    turns.run_turn(message_id)


@shared_task(bind=True, acks_late=True, max_retries=8)
def deliver_message(self, message_id: str) -> None:  # type: ignore[no-untyped-def]
    retry_in = delivery.deliver(message_id, attempt=self.request.retries, max_attempts=self.max_retries + 1)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task
def requeue_unanswered_messages() -> int:
    """Enqueue again the turns and deliveries whose first enqueue was lost (Redis was down, say)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.TALIA_REQUEUE_UNANSWERED_AFTER_S)
    window = {"created__lt": cutoff, "created__gte": now - REQUEUE_HORIZON}
    unanswered = Message.objects.filter(
        direction=Direction.INBOUND,
        sender=Sender.CONTACT,
        conversation__status=ConversationStatus.BOT,
        assistant_run__isnull=True,
        **window,
    ).values_list("id", flat=True)[:REQUEUE_BATCH]
    undelivered = (
        Message.objects.filter(direction=Direction.OUTBOUND, delivery_status=DeliveryStatus.PENDING, **window)
        .exclude(metadata__has_key=delivery.ATTEMPTS_KEY)
        .values_list("id", flat=True)[:REQUEUE_BATCH]
    )
    count = 0
    for message_id in unanswered:
        run_assistant_turn.delay(str(message_id))
        count += 1
    for message_id in undelivered:
        deliver_message.delay(str(message_id))
        count += 1
    if count:
        logger.warning("Requeued %d turn(s) and deliveries that were never processed", count)
    return count
