"""Event rows to envelopes: the one place that decides what a sink sees of an event.

`data` is the event's payload; for a sink that takes personal data, events that name a message
(`message_id`) also carry its `text`. For any other sink the event type's personal keys
(`sinks.personal_keys()`) are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from django.db.models import F, QuerySet

from conversations.models import Conversation, Event, Message
from talia.integrations.sinks import SCHEMA_VERSION, Envelope, personal_keys


def with_channel(events: QuerySet[Event]) -> QuerySet[Event]:
    """The events with their conversation's channel as `channel`, read in the same statement."""
    return events.annotate(channel=F("conversation__channel"))


def build(events: Sequence[Event], *, personal_data: bool) -> list[Envelope]:
    """One envelope per event, in the given order. Message texts are read in one statement when needed."""
    texts: dict[str, str] = {}
    if personal_data:
        ids = {event.payload["message_id"] for event in events if event.payload.get("message_id")}
        if ids:
            texts = {str(pk): text for pk, text in Message.objects.filter(pk__in=ids).values_list("pk", "text")}
    channels = _channels(events)
    envelopes = []
    for event in events:
        data = dict(event.payload)
        if personal_data:
            if data.get("message_id") in texts:
                data["text"] = texts[data["message_id"]]
        else:
            personal = personal_keys(event.name)
            data = {key: value for key, value in data.items() if key not in personal}
        envelopes.append(
            Envelope(
                id=event.pk,
                type=event.name,
                version=SCHEMA_VERSION,
                occurred_at=event.created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                conversation_id=str(event.conversation_id) if event.conversation_id else None,
                contact_id=str(event.contact_id) if event.contact_id else None,
                channel=channels.get(event.conversation_id) if event.conversation_id else None,
                data=data,
            )
        )
    return envelopes


def _channels(events: Sequence[Event]) -> dict:
    """The channel of each event's conversation: annotated on the rows (`channel`) or read in one statement."""
    known = {event.conversation_id: event.channel for event in events if hasattr(event, "channel")}
    missing = {
        event.conversation_id for event in events if event.conversation_id and event.conversation_id not in known
    }
    if missing:
        known.update(Conversation.objects.filter(pk__in=missing).values_list("pk", "channel"))
    return known
