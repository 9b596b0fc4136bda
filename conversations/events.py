"""Recording events. Always called inside the transaction of the change the event describes."""

from __future__ import annotations

from typing import Any

from conversations.models import Contact, Conversation, Event, EventName


def record_event(
    name: EventName,
    *,
    conversation: Conversation | None = None,
    contact: Contact | None = None,
    **payload: Any,
) -> Event:
    if contact is None and conversation is not None:
        contact = conversation.contact
    return Event.objects.create(name=name, conversation=conversation, contact=contact, payload=payload)
