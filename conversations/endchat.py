"""The end-chat handshake: a contact who wants to end a chat with a person asks that person first.

With the assistant (or while waiting in the queue) there is nobody to ask, so the chat ends at once.
While an agent has it, the request waits for the agent: accepting closes the conversation, declining
keeps it open and tells the contact.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations import realtime, state
from conversations.models import Conversation, ConversationStatus, EndChatRequest


class NoEndRequestError(Exception):
    pass


def request_end(conversation: Conversation, *, reason: str = "") -> EndChatRequest | None:
    """The contact wants to end the chat. Returns the pending request, or None if it closed at once."""
    with transaction.atomic():
        current = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("assigned_agent")
            .get(pk=conversation.pk)
        )
        if current.status != ConversationStatus.AGENT:
            state.close_conversation(current, ended_by="contact", reason=reason or "the contact ended the chat")
            return None
        pending = current.end_requests.filter(status=EndChatRequest.Status.PENDING).first()
        if pending is not None:
            return pending
        request = EndChatRequest.objects.create(conversation=current, requested_by=EndChatRequest.RequestedBy.CONTACT)
        realtime.publish(
            [current.group_name, realtime.MONITOR_GROUP], realtime.conversation_changed("end.requested", current)
        )
    return request


def answer_end(conversation: Conversation, agent: Any, *, accept: bool) -> Conversation:
    """The agent answers the contact's pending request to end the chat."""
    with transaction.atomic():
        current = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("assigned_agent")
            .get(pk=conversation.pk)
        )
        pending = current.end_requests.select_for_update().filter(status=EndChatRequest.Status.PENDING).first()
        if pending is None:
            raise NoEndRequestError("The contact has not asked to end the chat.")
        pending.status = EndChatRequest.Status.ACCEPTED if accept else EndChatRequest.Status.DECLINED
        pending.resolved_at = timezone.now()
        pending.save(update_fields=["status", "resolved_at", "updated"])
        if accept:
            return state.close_conversation(
                current, ended_by="contact", reason=f"end accepted by {agent.get_username()}"
            )
        realtime.publish([current.group_name], realtime.conversation_changed("end.declined", current))
    return current
