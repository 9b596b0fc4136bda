"""Outbound delivery through the channel registry (WhatsApp send, voice...), with retries.

Web chat registers no deliverer: the realtime push every message gets is its delivery.

Each attempt is claimed with a conditional UPDATE that also records the sending worker process
(talia.workers.identity), cleared when the attempt ends. `release_abandoned_deliveries()` finds the
attempts whose process died mid-send so they are queued again at once. A provider may have accepted a
message whose sender died before recording it: delivery is at least once, never silently dropped.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from conversations.models import DeliveryStatus, Message
from conversations.registry import DeliveryError, channels
from talia import workers

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


def backoff(attempt: int) -> float:
    return min(5.0 * 2**attempt, MAX_BACKOFF_S)


def deliver(message_id: str, *, attempt: int, max_attempts: int) -> float | None:
    """Send a pending outbound message once. Returns seconds to wait before a retry, or None when done.

    Each attempt is claimed with a conditional UPDATE on the attempt counter, so two copies of the task
    never send the same message twice.
    """
    message = Message.objects.filter(pk=message_id, delivery_status=DeliveryStatus.PENDING).first()
    if message is None:
        return None
    deliverer = channels.deliverer_for(message.channel)
    if deliverer is None:
        logger.error("No deliverer for channel %s; message %s stays pending", message.channel, message_id)
        return None
    claimed = Message.objects.filter(
        pk=message.pk, delivery_status=DeliveryStatus.PENDING, delivery_attempts=message.delivery_attempts
    ).update(
        delivery_attempts=F("delivery_attempts") + 1,
        delivery_worker=workers.identity(),
        # Claimed now: the requeue sweep and the dead-worker sweep both count from here.
        delivery_queued_at=timezone.now(),
    )
    if not claimed:
        return None
    try:
        external_id = deliverer(message)
    except Exception as exc:
        error = exc if isinstance(exc, DeliveryError) else DeliveryError(f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, DeliveryError):
            logger.exception("Deliverer for %s crashed on message %s", message.channel, message_id)
        if error.permanent or attempt + 1 >= max_attempts:
            Message.objects.filter(pk=message.pk).update(
                delivery_status=DeliveryStatus.FAILED, delivery_error=str(error), delivery_worker=""
            )
            logger.warning("Delivery of message %s failed for good: %s", message_id, error)
            return None
        wait = backoff(attempt)
        # Tell the requeue sweep a retry is already scheduled.
        Message.objects.filter(pk=message.pk).update(
            delivery_error=str(error), delivery_queued_at=timezone.now() + timedelta(seconds=wait), delivery_worker=""
        )
        logger.info("Delivery of message %s failed, retrying in %.0fs: %s", message_id, wait, error)
        return wait
    fields: dict[str, object] = {"delivery_status": DeliveryStatus.SENT, "delivery_error": "", "delivery_worker": ""}
    if external_id:
        fields["external_id"] = external_id
    Message.objects.filter(pk=message.pk).update(**fields)
    return None


def release_abandoned_deliveries() -> list[str]:
    """Ids of pending messages whose sending worker process died mid-attempt, released for a new attempt.

    Same rule as turns.release_abandoned_runs: the sender's heartbeat is missing or older than
    TALIA_WORKER_HEARTBEAT_TTL_S, and so is the claim. Raises redis.RedisError when liveness cannot be
    read. The caller queues the ids.
    """
    now = timezone.now()
    in_flight = list(
        Message.objects.filter(
            delivery_status=DeliveryStatus.PENDING,
            delivery_queued_at__lt=now - timedelta(seconds=settings.TALIA_WORKER_HEARTBEAT_TTL_S),
        )
        .exclude(delivery_worker="")
        .values_list("pk", "delivery_worker", "delivery_attempts")
    )
    if not in_flight:
        return []
    living = workers.alive(sender for _pk, sender, _attempts in in_flight)
    released = []
    for pk, sender, attempts in in_flight:
        if sender in living:
            continue
        if Message.objects.filter(
            pk=pk, delivery_status=DeliveryStatus.PENDING, delivery_worker=sender, delivery_attempts=attempts
        ).update(delivery_worker="", delivery_queued_at=now):
            logger.warning("Delivery of message %s released: its worker %s is gone", pk, sender)
            released.append(str(pk))
    return released
