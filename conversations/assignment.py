"""Auto-assignment: a conversation queued for a team with `auto_assign` goes straight to one of its members.

Chosen, once the queueing commits (`offer_after_commit`): the team's members who are available
(presence: a console socket open and their chosen state online, see conversations.console.presence)
and have fewer open conversations (status agent, assigned to them) than the team's capacity; the one
with the fewest wins, ties going to whoever was assigned a conversation longest ago (round-robin).

The conversation is claimed on the agent's behalf (conversations.state.claim_conversation), so there is
no offer to accept or time out: it appears among the agent's conversations at once, and the claim's
conditional UPDATE guarantees one winner against manual claims and other auto-assigners. Capacity holds
under concurrency because the chosen agent's user row is locked while their load is counted and the
claim is made: two assigners choosing the same agent take turns, and the second counts the first's claim.

An agent who becomes available (chooses online) gets the waiting conversations of their auto-assign
teams, oldest first, up to capacity (`fill`). Manual claim stays possible throughout.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Max, Q

from conversations import realtime, state
from conversations.console import presence
from conversations.console.permissions import AGENTS_GROUP_NAME
from conversations.models import Conversation, ConversationStatus, Team

logger = logging.getLogger(__name__)


def _candidates(team: Team, available: set[int]) -> list[Any]:
    """Available, active agent members of `team` under capacity, the best first."""
    users = (
        team.members.filter(pk__in=available, is_active=True)
        .filter(Q(is_staff=True) | Q(groups__name=AGENTS_GROUP_NAME))
        .distinct()
        .annotate(
            load=Count(
                "assigned_conversations",
                filter=Q(assigned_conversations__status=ConversationStatus.AGENT),
                distinct=True,
            ),
            last_assigned=Max("assignments__assigned_at"),
        )
    )
    ranked = [user for user in users if user.load < team.capacity]
    return sorted(
        ranked,
        key=lambda user: (user.load, user.last_assigned.timestamp() if user.last_assigned else 0.0, user.pk),
    )


def _claim_within_capacity(conversation: Conversation, agent_id: int, capacity: int) -> bool | None:
    """Claim for the agent if they are still under capacity: True claimed, False full, None not queued."""
    user_model = get_user_model()
    with transaction.atomic():
        agent = user_model.objects.select_for_update().get(pk=agent_id)  # one assigner per agent at a time
        load = Conversation.objects.filter(status=ConversationStatus.AGENT, assigned_agent_id=agent_id).count()
        if load >= capacity:
            return False
        try:
            claimed = state.claim_conversation(conversation, agent)
        except state.TransitionError:
            return None
        # The agent's consoles: it is theirs now (the queue hears `handoff.accepted` from the claim).
        realtime.publish(
            [realtime.agent_group(agent_id)], realtime.conversation_changed("conversation.assigned", claimed)
        )
    return True


def auto_assign(conversation_id: UUID | str, *, exclude: int | None = None) -> Any | None:
    """Give a queued conversation of an auto-assign team to its best available member; the agent or None.
    `exclude`: an agent who must not get it (the one who just transferred it away)."""
    conversation = Conversation.objects.select_related("team").filter(pk=conversation_id).first()
    if conversation is None or conversation.status != ConversationStatus.QUEUED:
        return None
    team = conversation.team
    if team is None or not team.auto_assign:
        return None
    available = presence.available_agent_ids()
    if not available:
        return None
    for agent in _candidates(team, available - {exclude}):
        outcome = _claim_within_capacity(conversation, agent.pk, team.capacity)
        if outcome is None:
            return None  # claimed, cancelled or closed meanwhile
        if outcome:
            logger.info("Auto-assigned conversation %s to agent %s", conversation.pk, agent.pk)
            return agent
    return None


def offer_after_commit(conversation_id: UUID | str, *, exclude: int | None = None) -> None:
    """Run `auto_assign` once the current transaction commits; a failure leaves it queued (logged)."""

    def run() -> None:
        try:
            auto_assign(conversation_id, exclude=exclude)
        except Exception:
            logger.exception("Auto-assignment of conversation %s failed; it stays queued", conversation_id)

    transaction.on_commit(run)


def fill(agent: Any, *, skip: UUID | None = None) -> list[str]:
    """The agent just became available: auto-assign waiting conversations of their teams, oldest first
    (but `skip`, a conversation they just transferred away)."""
    assigned = []
    waiting = Conversation.objects.filter(status=ConversationStatus.QUEUED, team__auto_assign=True, team__members=agent)
    if skip is not None:
        waiting = waiting.exclude(pk=skip)
    waiting = waiting.annotate(queued_at=Max("handoff_requests__created")).order_by("queued_at")
    for conversation in waiting[:50]:
        if auto_assign(conversation.pk) is None:
            continue
        assigned.append(str(conversation.pk))
    return assigned
