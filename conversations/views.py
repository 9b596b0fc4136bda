"""The agent console (server-rendered; live updates arrive with the console socket)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from conversations import summaries
from conversations.console import can_watch, is_agent
from conversations.models import Conversation, ConversationStatus, EndChatRequest, Message, QuickReply

PREVIEW_MESSAGES = 3
RECENTLY_CLOSED = 10


def _with_preview(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Contact, agent and the last few messages (newest first) of each conversation, in three queries."""
    latest = Message.objects.order_by("-seq")[:PREVIEW_MESSAGES]
    return conversations.select_related("contact", "assigned_agent").prefetch_related(
        Prefetch("messages", queryset=latest, to_attr="latest_messages")
    )


def agent_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous users go to the login page; signed-in users who are not agents get a 403."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_agent(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@agent_required
def console(request: HttpRequest) -> HttpResponse:
    queued = _with_preview(
        Conversation.objects.filter(status=ConversationStatus.QUEUED)
        .annotate(queued_at=Max("handoff_requests__created"))
        .order_by("queued_at")
    )
    mine = _with_preview(
        Conversation.objects.filter(status=ConversationStatus.AGENT, assigned_agent_id=request.user.pk).order_by(
            "-last_message_at"
        )
    )
    closed = _with_preview(Conversation.objects.filter(status=ConversationStatus.CLOSED).order_by("-closed_at"))
    context = {"queued": queued, "mine": mine, "closed": closed[:RECENTLY_CLOSED]}
    return render(request, "conversations/console.html", context)


@agent_required
def conversation_page(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = get_object_or_404(
        Conversation.objects.select_related("contact", "assigned_agent"), pk=conversation_id
    )
    if not can_watch(request.user, conversation):
        raise PermissionDenied
    context = {
        "conversation": conversation,
        "messages": conversation.messages.select_related("agent").order_by("seq"),
        "brief": summaries.handoff_brief(conversation),
        "is_mine": conversation.status == ConversationStatus.AGENT
        and conversation.assigned_agent_id == request.user.pk,
        "can_claim": conversation.status == ConversationStatus.QUEUED,
        # A request to end the chat that arrived before this page was opened.
        "end_requested": conversation.end_requests.filter(status=EndChatRequest.Status.PENDING).exists(),
        "quick_replies": QuickReply.objects.all(),
    }
    return render(request, "conversations/conversation.html", context)
