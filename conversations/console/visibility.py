"""Who may open which conversation: the console's one rule, public to the other apps (like `permissions`).

Agents see the assistant's conversations, the queue of their teams plus the unrouted one, and their own;
supervisors see everything. Pages, the console API, the staff sockets and other apps' console sections
(the leads sidebar panel) all ask `can_watch`; lists narrow with `watchable`, the same rule as a query.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from conversations.console.permissions import is_supervisor
from conversations.models import Conversation, ConversationStatus, Team

# What every agent may open besides their own: the queue, and conversations with the assistant (to follow
# them and take one over before the contact asks).
SHARED_STATUSES = (ConversationStatus.BOT, ConversationStatus.QUEUED)


def can_watch(user: Any, conversation: Conversation) -> bool:
    """Agents see the assistant's conversations, the queue of their teams plus the unrouted one, and their
    own; staff see everything."""
    if is_supervisor(user):
        return True
    if conversation.assigned_agent_id == user.pk and conversation.assigned_agent_id is not None:
        return True
    if conversation.status == ConversationStatus.QUEUED:
        return conversation.team_id is None or Team.objects.filter(pk=conversation.team_id, members=user).exists()
    return conversation.status in SHARED_STATUSES


def watchable(user: Any, conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """`conversations` narrowed to those `user` may open (`can_watch` as a query): what lists may preview."""
    if is_supervisor(user):
        return conversations
    my_teams = Team.objects.filter(members=user).values("pk")
    return conversations.filter(
        Q(status=ConversationStatus.BOT)
        | Q(status=ConversationStatus.QUEUED, team__isnull=True)
        | Q(status=ConversationStatus.QUEUED, team_id__in=my_teams)
        | Q(assigned_agent_id=user.pk)
    )
