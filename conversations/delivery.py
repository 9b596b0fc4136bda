"""Outbound delivery through the channel registry (WhatsApp send, voice...), with retries.

Web chat is a "pull" channel with no deliverer: the realtime push every message gets is its delivery.
A message no deliverer could take is marked failed with the reason, never sent.

After the deliverer, the provider's callbacks move the message on through `record_status()`, the one
way they update it: forward only (queued -> sent -> delivered -> read), failed and undelivered
terminal, each call one conditional UPDATE, so repeated and out-of-order callbacks are harmless. Every
change is pushed to the staff watching the conversation (realtime `message.status`).

Each attempt is claimed with a conditional UPDATE that also records the sending worker process
(talia.workers.identity), cleared when the attempt ends. `release_abandoned_deliveries()` finds the
attempts whose process died mid-send so they are queued again at once. A provider may have accepted a
message whose sender died before recording it: delivery is at least once, never silently dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from conversations import realtime
from conversations.inbox import enqueue_delivery
from conversations.models import Conversation, DeliveryStatus, Direction, Message
from conversations.registry import DeliveryError, channel_specs
from talia import metrics, workers

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
    if _previous_part_pending(message):
        return None  # the part before it queues it once sent (a recovery sweep may get here first)
    deliverer = channel_specs.deliverer_for(message.channel)
    if deliverer is None:
        # Never `sent`: nobody took it. The system check (conversations.checks) names the misconfiguration.
        reason = f"No deliverer is registered for the channel {message.channel!r}."
        if Message.objects.filter(pk=message.pk, delivery_status=DeliveryStatus.PENDING).update(
            delivery_status=DeliveryStatus.FAILED, delivery_error=reason, delivery_worker=""
        ):
            _publish(message.pk)
            metrics.delivery_failed(message.channel, final=True)
        logger.error("Message %s failed: %s", message_id, reason)
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
        metrics.delivery_failed(message.channel, final=error.permanent or attempt + 1 >= max_attempts)
        if error.permanent or attempt + 1 >= max_attempts:
            Message.objects.filter(pk=message.pk).update(
                delivery_status=DeliveryStatus.FAILED, delivery_error=str(error), delivery_worker=""
            )
            _publish(message.pk)
            _fail_later_parts(message)
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
    # Only while still pending: a provider callback cannot have moved it yet (it knows it by external_id,
    # stored here), but a status must never go back.
    Message.objects.filter(pk=message.pk, delivery_status=DeliveryStatus.PENDING).update(**fields)
    _publish(message.pk)
    if (following := _next_part(message)) is not None:
        enqueue_delivery(str(following.pk))
    return None


# --- Long texts stored as several parts (inbox.send), delivered in order --------------------------------


def _part(message: Message) -> tuple[int, int] | None:
    """(n, of) for a message that is part n of a longer text, else None."""
    part = message.metadata.get("part") if isinstance(message.metadata, dict) else None
    if isinstance(part, list) and len(part) == 2 and all(isinstance(x, int) for x in part):
        return part[0], part[1]
    return None


def _previous_part_pending(message: Message) -> bool:
    part = _part(message)
    if part is None or part[0] <= 1:
        return False
    # The parts were stored together under the conversation's lock: consecutive numbers.
    return Message.objects.filter(
        conversation_id=message.conversation_id, seq=message.seq - 1, delivery_status=DeliveryStatus.PENDING
    ).exists()


def _next_part(message: Message) -> Message | None:
    part = _part(message)
    if part is None or part[0] >= part[1]:
        return None
    return Message.objects.filter(
        conversation_id=message.conversation_id, seq=message.seq + 1, delivery_status=DeliveryStatus.PENDING
    ).first()


def _fail_later_parts(message: Message) -> None:
    """A part that cannot be delivered takes the rest of its text with it: half a reply would mislead."""
    part = _part(message)
    if part is None or part[0] >= part[1]:
        return
    later = Message.objects.filter(
        conversation_id=message.conversation_id,
        seq__gt=message.seq,
        seq__lte=message.seq + part[1] - part[0],
        delivery_status=DeliveryStatus.PENDING,
    )
    ids = list(later.values_list("pk", flat=True))
    later.update(
        delivery_status=DeliveryStatus.FAILED,
        delivery_error=f"Not sent: part {part[0]} of {part[1]} could not be delivered.",
        delivery_worker="",
    )
    for pk in ids:
        _publish(pk)


# --- Reply windows (ChannelSpec.reply_window) ----------------------------------------------------------


@dataclass(frozen=True)
class ReplyWindow:
    """When the contact last wrote on the channel, and until when the provider lets us write freely."""

    last_contact_message_at: datetime | None
    closes_at: datetime | None

    @property
    def open(self) -> bool:
        return self.closes_at is not None and timezone.now() < self.closes_at


def reply_window(conversation: Conversation) -> ReplyWindow | None:
    """The conversation's reply window; None when its channel lets us write at any time.

    Counted from the contact's last message on the channel in any of their conversations (a new
    conversation opened by a message is inside it; one opened by us is not).
    """
    spec = channel_specs.get(conversation.channel)
    if spec is None or spec.reply_window is None:
        return None
    last = (
        Message.objects.filter(
            conversation__contact_id=conversation.contact_id,
            channel=conversation.channel,
            direction=Direction.INBOUND,
        )
        .order_by("-created")
        .values_list("created", flat=True)
        .first()
    )
    return ReplyWindow(last, last + spec.reply_window if last else None)


# How far along each status is. A status may only replace one of lower rank that is not terminal.
STATUS_RANK = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.QUEUED: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.READ: 4,
    # A failure reported once the message reached the phone is stale: ranked with delivered.
    DeliveryStatus.FAILED: 3,
    DeliveryStatus.UNDELIVERED: 3,
}
TERMINAL = frozenset({DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED})
CALLBACK_STATUSES = frozenset(STATUS_RANK) - {DeliveryStatus.PENDING}

Recorded = Literal["updated", "unchanged", "unknown"]


def record_status(
    channel: str, external_id: str, status: str, error_code: str | None = None, error_message: str = ""
) -> Recorded:
    """Apply a provider's delivery callback to the message it names; the one way callbacks update one.

    The message is found by its channel and the provider's id for it (Message.external_id, stored when
    the deliverer returned it). "updated": the status moved forward (pushed to the console after commit);
    "unchanged": the message is already as far or further (a repeated or late callback), or terminal;
    "unknown": no message has that id on that channel (yet). Raises ValueError for a status that is not
    a provider's (queued, sent, delivered, read, failed, undelivered).
    """
    if status not in CALLBACK_STATUSES:
        raise ValueError(f"Not a delivery status a provider reports: {status!r}.")
    new = DeliveryStatus(status)
    before = [old for old, rank in STATUS_RANK.items() if rank < STATUS_RANK[new] and old not in TERMINAL]
    fields: dict[str, object] = {"delivery_status": new}
    if new in TERMINAL:
        fields["delivery_error"] = ": ".join(part for part in (error_code or "", error_message) if part) or str(
            new.label
        )
    messages = Message.objects.filter(channel=channel, external_id=external_id)
    if not external_id:
        return "unknown"
    # One conditional UPDATE: two callbacks racing each move the row only forward, whichever lands last.
    if messages.filter(delivery_status__in=before).update(**fields):
        message = messages.get()
        realtime.publish_message_status(message)
        if new in TERMINAL:  # the provider gave up on a message it had accepted
            metrics.delivery_failed(channel, final=True)
        return "updated"
    return "unchanged" if messages.exists() else "unknown"


def _publish(message_id: UUID | str) -> None:
    message = Message.objects.filter(pk=message_id).first()
    if message is not None:
        realtime.publish_message_status(message)


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
