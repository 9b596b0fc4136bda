from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, cast

from django.utils import timezone

from conversations import inbox
from conversations.models import Conversation
from talia.integrations import publisher
from talia.integrations.models import DeliveryStatus, EventDelivery
from talia.redis_client import get_redis


def visitor_says(identity: str, text: str = "Hola") -> Conversation:
    """A web visitor's message stored by the real inbox (events: conversation_opened, message_received)."""
    return inbox.receive("web", identity, text, assistant_turn=False).conversation


def publish_until_settled(*, start: datetime | None = None, passes: int = 50) -> datetime:
    """Run passes, moving `now` to the next due retry each time, until nothing is pending; returns `now`."""
    now = start or timezone.now()
    for _ in range(passes):
        publisher.run_pass(now=now)
        pending = EventDelivery.objects.filter(status=DeliveryStatus.PENDING).order_by("next_attempt_at").first()
        if pending is None:
            return now
        now = max(now, pending.next_attempt_at) + timedelta(milliseconds=1)
    raise AssertionError("deliveries still pending after every pass")


StreamEntry = tuple[bytes, dict[bytes, bytes]]


def stream_entries(stream: str) -> list[StreamEntry]:
    return cast(list[StreamEntry], get_redis().xrange(stream))


def stream_envelopes(stream: str) -> list[dict[str, Any]]:
    return [json.loads(fields[b"envelope"]) for _, fields in stream_entries(stream)]
