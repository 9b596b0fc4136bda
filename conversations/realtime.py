"""Realtime fan-out over the channel layer.

Every push is a typed envelope `{"type": ..., ...}` sent to one or more groups, and always after the
transaction that stored its data commits: a client never hears of a row it cannot read yet. If Redis is
down the push is logged and dropped; clients recover what they missed from the database on reconnect.

Groups: `conversation.<id>` (the visitor and anyone viewing that conversation), `agents` (every online
agent: the queue), `monitor` (supervisors: everything).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from conversations.models import Conversation, Message

logger = logging.getLogger(__name__)

AGENTS_GROUP = "agents"
MONITOR_GROUP = "monitor"


class MessagePayload(TypedDict):
    id: str
    conversation_id: str
    seq: int
    direction: str
    sender: str
    agent_name: str | None
    text: str
    content_type: str
    created: str


class MessageNew(TypedDict):
    type: Literal["message.new"]
    conversation_id: str
    message: MessagePayload


ConversationEventType = Literal[
    "conversation.opened",
    "queue.added",
    "queue.removed",
    "handoff.requested",
    "handoff.accepted",
    "handoff.cancelled",
    "conversation.handed_back",
    "conversation.closed",
]


class ConversationChanged(TypedDict):
    type: ConversationEventType
    conversation_id: str
    channel: str
    status: str
    agent_name: str | None


RealtimeEvent = MessageNew | ConversationChanged


def agent_name(user: object | None) -> str | None:
    if user is None:
        return None
    full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return full_name or getattr(user, "username", None)


def message_payload(message: Message) -> MessagePayload:
    """The public shape of a message: never the internal metadata (IP, user agent...)."""
    return {
        "id": str(message.id),
        "conversation_id": str(message.conversation_id),
        "seq": message.seq,
        "direction": message.direction,
        "sender": message.sender,
        "agent_name": agent_name(message.agent),
        "text": message.text,
        "content_type": message.content_type,
        "created": message.created.isoformat(),
    }


def message_new(message: Message) -> MessageNew:
    return {"type": "message.new", "conversation_id": str(message.conversation_id), "message": message_payload(message)}


def conversation_changed(event_type: ConversationEventType, conversation: Conversation) -> ConversationChanged:
    return {
        "type": event_type,
        "conversation_id": str(conversation.id),
        "channel": conversation.channel,
        "status": conversation.status,
        "agent_name": agent_name(conversation.assigned_agent),
    }


def publish(groups: Iterable[str], event: RealtimeEvent) -> None:
    """Send `event` to every group once the current transaction commits (at once outside one)."""
    targets = list(dict.fromkeys(groups))
    transaction.on_commit(lambda: _send(targets, event))


def _send(groups: list[str], event: RealtimeEvent) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, dict(event))
        except Exception:
            logger.warning("Realtime push %s to %s failed", event["type"], group, exc_info=True)
