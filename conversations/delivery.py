"""Outbound delivery through the channel registry (WhatsApp send, voice...), with retries.

Web chat registers no deliverer: the realtime push every message gets is its delivery.
"""

from __future__ import annotations

import logging

from conversations.models import DeliveryStatus, Message
from conversations.registry import DeliveryError, channels

logger = logging.getLogger(__name__)

ATTEMPTS_KEY = "delivery_attempts"
MAX_BACKOFF_S = 300.0


def backoff(attempt: int) -> float:
    return min(5.0 * 2**attempt, MAX_BACKOFF_S)


def deliver(message_id: str, *, attempt: int, max_attempts: int) -> float | None:
    """Send a pending outbound message once. Returns seconds to wait before a retry, or None when done.

    The attempt is recorded on the message before the provider is called, so the requeue sweep never
    re-sends a message whose delivery is already under way.
    """
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None or message.delivery_status != DeliveryStatus.PENDING:
        return None
    deliverer = channels.deliverer_for(message.channel)
    if deliverer is None:
        logger.error("No deliverer for channel %s; message %s stays pending", message.channel, message_id)
        return None
    message.metadata[ATTEMPTS_KEY] = message.metadata.get(ATTEMPTS_KEY, 0) + 1
    message.save(update_fields=["metadata"])
    try:
        external_id = deliverer(message)
    except DeliveryError as exc:
        if exc.permanent or attempt + 1 >= max_attempts:
            message.delivery_status = DeliveryStatus.FAILED
            message.metadata["delivery_error"] = str(exc)
            message.save(update_fields=["delivery_status", "metadata"])
            logger.warning("Delivery of message %s failed for good: %s", message_id, exc)
            return None
        logger.info("Delivery of message %s failed, will retry: %s", message_id, exc)
        return backoff(attempt)
    message.delivery_status = DeliveryStatus.SENT
    update_fields = ["delivery_status"]
    if external_id:
        message.external_id = external_id
        update_fields.append("external_id")
    message.save(update_fields=update_fields)
    return None
