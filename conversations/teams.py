"""Teams: which queue a conversation waits in, and who may see a team's queue.

Routing happens once, when a conversation is queued (conversations.state.request_handoff, in the same
transaction as the transition): the first team (by name) with a keyword found in the handoff reason the
assistant (or contact) gave, else the first team that takes the conversation's channel, else no team —
everyone's queue. Keywords match whole words, ignoring case and accents.

Visibility: an agent sees the queued conversations of their teams and the unrouted ones; supervisors
see all (conversations.console.actions.can_watch). Live queue pushes go to the `team.<id>` group (the
console sockets of the team's members that are not supervisors) plus `supervisors`, or to `agents`
for an unrouted conversation (conversations.realtime.queue_groups).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from django.db.models import Count, Min, Q

from conversations.models import Conversation, ConversationStatus, Team


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _mentions(reason: str, keyword: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(_plain(keyword))}(?!\w)", reason) is not None


def route(conversation: Conversation, reason: str) -> tuple[Team | None, str]:
    """The team `conversation` should wait for and why ("reason" or "channel"); (None, "") for none."""
    teams = list(Team.objects.all())
    plain = _plain(reason or "")
    if plain:
        for team in teams:
            if any(_mentions(plain, keyword) for keyword in team.keyword_list):
                return team, "reason"
    for team in teams:
        if conversation.channel in team.channel_list:
            return team, "channel"
    return None, ""


def team_ids_of(user: Any) -> list[int]:
    """The teams `user` is a member of."""
    return list(Team.objects.filter(members=user).values_list("pk", flat=True))


def waiting_by_team() -> dict[int | None, tuple[int, datetime | None]]:
    """For each queue with someone waiting (None: the unrouted one): how many wait and since when the
    oldest pending hand-off does. One query."""
    waiting = (
        Conversation.objects.filter(status=ConversationStatus.QUEUED)
        .values("team")
        .annotate(
            n=Count("id", distinct=True),
            oldest=Min("handoff_requests__created", filter=Q(handoff_requests__status="pending")),
        )
        .order_by()
    )
    return {row["team"]: (row["n"], row["oldest"]) for row in waiting}


def loads() -> dict[int, int]:
    """How many conversations each agent handles now (agents handling none are absent). One query."""
    handled = (
        Conversation.objects.filter(status=ConversationStatus.AGENT, assigned_agent__isnull=False)
        .values("assigned_agent")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["assigned_agent"]: row["n"] for row in handled}
