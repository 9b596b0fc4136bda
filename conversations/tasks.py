"""Celery tasks of the conversation core. Thin: they take ids and call a service."""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta
from uuid import UUID

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import F, Q
from django.utils import timezone

from conversations import assignment, csat, delivery, handoff, retention
from conversations.assistant import summaries, turns
from conversations.inbox import enqueue_delivery, enqueue_turn
from conversations.models import AssistantRun, DeliveryStatus, Message

logger = logging.getLogger(__name__)

# Anything older than this is left alone by the requeue sweep: a stale backlog is not worth answering.
REQUEUE_HORIZON = timedelta(hours=6)
REQUEUE_BATCH = 200


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=10,  # provider attempts are bounded by TALIA_ASSISTANT_MAX_ATTEMPTS within this
)
def run_assistant_turn(self: Task, message_id: str) -> None:
    try:
        turns.run_turn(message_id, attempt=self.request.retries)
    except turns.RetryTurn as retry:
        raise self.retry(countdown=retry.countdown) from retry


@shared_task(bind=True, acks_late=True, max_retries=8)
def deliver_message(self: Task, message_id: str) -> None:
    max_attempts = (self.max_retries or 0) + 1
    retry_in = delivery.deliver(message_id, attempt=self.request.retries, max_attempts=max_attempts)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(
    acks_late=True,
    # smtplib's errors are OSErrors: a refused connection, a timeout or a 4xx answer is retried.
    autoretry_for=(OSError, OperationalError, InterfaceError),
    retry_backoff=5,
    retry_jitter=True,
    max_retries=6,
)
def send_transcript(conversation_id: str, address: str) -> None:
    """Email a conversation's transcript (conversations.csat); a refused address is not retried."""
    try:
        csat.send_transcript(conversation_id, address)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        logger.warning("Transcript of %s not sent: the mail server refused it (%s)", conversation_id, exc)


@shared_task(acks_late=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=5)
def summarize_conversation(conversation_id: str) -> None:
    summaries.store_summary(conversation_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=5)
def write_handoff_brief(handoff_id: str) -> None:
    summaries.write_handoff_brief(handoff_id)


@shared_task
def expire_queued_handoffs() -> int:
    """Conversations nobody claimed within TALIA_QUEUE_TIMEOUT_S go back to the assistant."""
    return len(handoff.expire_stale_handoffs())


@shared_task
def recover_abandoned_work() -> int:
    """Queue again, at once, the turns and deliveries whose worker process died in the middle of them,
    and those whose enqueue failed or was skipped (queued_at NULL: Redis was down when they were stored).

    Every worker runs this when it starts and every TALIA_WORKER_HEARTBEAT_TTL_S / 3 seconds after, so a
    killed worker's turn is answered within about TTL + TTL/3 seconds of any worker being up, and a turn
    stored during a Redis outage within about TTL/3 seconds of Redis answering. Each unqueued item is
    claimed with a conditional UPDATE (queued_at NULL -> now), so two workers' sweeps queue it once; an
    enqueue that fails again marks it NULL again for the next sweep.
    """
    turn_ids = turns.release_abandoned_runs()
    delivery_ids = delivery.release_abandoned_deliveries()
    unqueued_turns, unqueued_deliveries = claim_unqueued_work()
    for message_id in [*turn_ids, *unqueued_turns]:
        enqueue_turn(str(message_id))
    for delivery_id in [*delivery_ids, *unqueued_deliveries]:
        enqueue_delivery(str(delivery_id))
    if turn_ids or delivery_ids:
        logger.warning("Recovered %d turn(s) and %d delivery(ies) from dead workers", len(turn_ids), len(delivery_ids))
    if unqueued_turns or unqueued_deliveries:
        logger.warning(
            "Queued %d turn(s) and %d delivery(ies) whose enqueue had failed",
            len(unqueued_turns),
            len(unqueued_deliveries),
        )
    return len(turn_ids) + len(delivery_ids) + len(unqueued_turns) + len(unqueued_deliveries)


def claim_unqueued_work() -> tuple[list[UUID], list[UUID]]:
    """Pending turns (their trigger message ids) and deliveries (message ids) marked not queued within
    REQUEUE_HORIZON, each taken by setting its queue time to now only if it is still NULL."""
    now = timezone.now()
    recent = now - REQUEUE_HORIZON
    turn_ids = []
    for pk, message_id in AssistantRun.objects.filter(
        status=AssistantRun.Status.PENDING, queued_at__isnull=True, created__gte=recent
    ).values_list("pk", "trigger_message_id")[:REQUEUE_BATCH]:
        if AssistantRun.objects.filter(pk=pk, status=AssistantRun.Status.PENDING, queued_at__isnull=True).update(
            queued_at=now, updated=now
        ):
            turn_ids.append(message_id)
    delivery_ids = []
    for pk in Message.objects.filter(
        delivery_status=DeliveryStatus.PENDING, delivery_queued_at__isnull=True, delivery_worker="", created__gte=recent
    ).values_list("pk", flat=True)[:REQUEUE_BATCH]:
        if Message.objects.filter(
            pk=pk, delivery_status=DeliveryStatus.PENDING, delivery_queued_at__isnull=True, delivery_worker=""
        ).update(delivery_queued_at=now):
            delivery_ids.append(pk)
    return turn_ids, delivery_ids


@shared_task
def requeue_unanswered_messages() -> int:
    """Enqueue again the turns and deliveries whose enqueue was lost (Redis was down, say).

    Only work that is still pending and was last queued more than TALIA_REQUEUE_UNANSWERED_AFTER_S ago
    (or never: queued_at NULL) is picked, and its queue time is bumped, so a missing worker does not
    make copies pile up.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.TALIA_REQUEUE_UNANSWERED_AFTER_S)
    recent = now - REQUEUE_HORIZON
    # NULL: never queued (the recovery sweep usually gets there first; this is the backstop).
    turn_ids = list(
        AssistantRun.objects.filter(
            turns.claimable_runs(), Q(queued_at__lt=stale) | Q(queued_at__isnull=True), created__gte=recent
        )
        .order_by(F("queued_at").asc(nulls_first=True))
        .values_list("trigger_message_id", flat=True)[:REQUEUE_BATCH]
    )
    AssistantRun.objects.filter(trigger_message_id__in=turn_ids).update(queued_at=now)
    delivery_ids = list(
        Message.objects.filter(
            Q(delivery_queued_at__lt=stale) | Q(delivery_queued_at__isnull=True, delivery_worker=""),
            delivery_status=DeliveryStatus.PENDING,
            created__gte=recent,
        )
        .order_by(F("delivery_queued_at").asc(nulls_first=True))
        .values_list("id", flat=True)[:REQUEUE_BATCH]
    )
    Message.objects.filter(pk__in=delivery_ids).update(delivery_queued_at=now)
    for message_id in turn_ids:
        enqueue_turn(str(message_id))
    for message_id in delivery_ids:
        enqueue_delivery(str(message_id))
    if turn_ids or delivery_ids:
        logger.warning(
            "Requeued %d turn(s) and %d delivery(ies) that were never processed", len(turn_ids), len(delivery_ids)
        )
    return len(turn_ids) + len(delivery_ids)


@shared_task
def expire_assignment_offers() -> int:
    """Auto-assignment offers nobody answered within TALIA_OFFER_TIMEOUT_S go to the next agent."""
    return len(assignment.expire_offers())


@shared_task(acks_late=True)
def apply_retention() -> int:
    """Nightly (beat): anonymise what TALIA_RETENTION_DAYS says is too old; a no-op while it is 0."""
    return retention.apply_retention().conversations
