"""The conversation state machine: the only code that changes Conversation.status.

    bot ──request_handoff──> queued ──claim──> agent
     │ ^                        │                ^ │
     │ └──cancel / expire_handoff                │ │
     └───────────────take_over───────────────────┘ │
       ^──────────────hand_back────────────────────┘
    bot | queued | agent ──close──> closed
    agent ──transfer_to_team──> queued        (and agent ──transfer_to_agent──> agent: a new assignee)
    queued ──move_to_team──> queued           (another team's queue: the team changes, the wait goes on)

Each transition is one conditional UPDATE (`... WHERE status IN (allowed sources)`) whose row count
says whether it happened, so of N concurrent claimers exactly one wins and no lock is held across
anything slow. The event and the realtime pushes go with it, the pushes after commit.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from conversations import events, profile, realtime, teams
from conversations.assistant.engines import engine_class
from conversations.models import (
    AgentAssignment,
    Conversation,
    ConversationStatus,
    HandoffRequest,
    InternalNote,
    Team,
)
from talia import enqueue

logger = logging.getLogger(__name__)

BOT, QUEUED, AGENT, CLOSED = (
    ConversationStatus.BOT,
    ConversationStatus.QUEUED,
    ConversationStatus.AGENT,
    ConversationStatus.CLOSED,
)

# action -> (statuses it may start from, status it leads to)
ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "request_handoff": (frozenset({BOT}), QUEUED),
    "claim": (frozenset({QUEUED}), AGENT),
    "take_over": (frozenset({BOT}), AGENT),
    "cancel_handoff": (frozenset({QUEUED}), BOT),
    "expire_handoff": (frozenset({QUEUED}), BOT),
    "hand_back": (frozenset({AGENT}), BOT),
    "close": (frozenset({BOT, QUEUED, AGENT}), CLOSED),
    "transfer_to_team": (frozenset({AGENT}), QUEUED),
    "move_to_team": (frozenset({QUEUED}), QUEUED),
}

LEGAL_TRANSITIONS = frozenset((source, target) for sources, target in ACTIONS.values() for source in sources)


class TransitionError(Exception):
    """The conversation is not in a status the action can start from."""

    def __init__(self, conversation_id: object, action: str, current: str) -> None:
        self.conversation_id = conversation_id
        self.action = action
        self.current = current
        super().__init__(f"Cannot {action.replace('_', ' ')} conversation {conversation_id}: it is {current}.")


class AlreadyClaimedError(TransitionError):
    """Another agent claimed the conversation first."""


class SameTeamError(TransitionError):
    """The conversation already waits in that team's queue."""


def _transition(conversation: Conversation, action: str, **changes: Any) -> Conversation:
    sources, target = ACTIONS[action]
    updated = Conversation.objects.filter(pk=conversation.pk, status__in=sources).update(
        status=target, updated=timezone.now(), **changes
    )
    if updated != 1:
        current = Conversation.objects.filter(pk=conversation.pk).values_list("status", flat=True).first()
        if current is None:
            raise Conversation.DoesNotExist(f"Conversation {conversation.pk} does not exist.")
        error = AlreadyClaimedError if action == "claim" and current == AGENT else TransitionError
        raise error(conversation.pk, action, current)
    fresh = Conversation.objects.select_related("contact", "assigned_agent", "team").get(pk=conversation.pk)
    # Keep the caller's instance truthful too.
    conversation.status = fresh.status
    conversation.assigned_agent = fresh.assigned_agent
    conversation.closed_at = fresh.closed_at
    conversation.team = fresh.team
    return fresh


def request_handoff(conversation: Conversation, *, requested_by: str, reason: str = "") -> HandoffRequest:
    """Queue the conversation for a human agent, in its team's queue (conversations.teams); the assistant
    falls silent. A team with auto-assignment gets it offered once this commits (conversations.assignment)."""
    with transaction.atomic():
        team, routed_by = teams.route(conversation, reason)
        fresh = _transition(conversation, "request_handoff", team=team)
        handoff = HandoffRequest.objects.create(
            conversation=fresh,
            requested_by=requested_by,
            reason=reason,
            out_of_hours=not profile.current().is_open(),
        )
        events.emit(events.HANDOFF_REQUESTED, conversation=fresh, requested_by=requested_by, reason=reason)
        if team is not None:
            events.emit(events.ROUTED, conversation=fresh, team_id=team.pk, team=team.name, by=routed_by)
        realtime.publish(
            realtime.queue_groups(fresh.team_id), realtime.queue_added(fresh, out_of_hours=handoff.out_of_hours)
        )
        _offer(fresh)
        realtime.publish([fresh.group_name], realtime.conversation_changed("handoff.requested", fresh))
        if engine_class().writes_structured:  # otherwise briefs are extractive, built on demand
            handoff_id = str(handoff.pk)
            # If Redis is down the hand-off is stored and the console falls back to an extractive brief.
            enqueue.after_commit("conversations.tasks.write_handoff_brief", handoff_id, what="handoff brief")
    return handoff


def _resolve_offers(conversation: Conversation, *, claimed_by: Any = None, accepting: int | None = None) -> None:
    """Leaving the queue closes its pending auto-assignment offer (conversations.assignment)."""
    from conversations import assignment  # it claims through this module

    assignment.resolve_offers(conversation, claimed_by=claimed_by, accepting=accepting)


def _offer(conversation: Conversation, *, exclude: int | None = None) -> None:
    if conversation.team is not None and conversation.team.auto_assign:
        from conversations import assignment  # it claims through this module

        assignment.offer_after_commit(conversation.pk, exclude=exclude)


def claim_conversation(conversation: Conversation, agent: Any, *, offer_id: int | None = None) -> Conversation:
    """Give a queued conversation to `agent`. Raises AlreadyClaimedError when someone was quicker.

    Its pending auto-assignment offer is closed with it: accepted when `offer_id` (the agent answering
    the offer; conversations.assignment.OfferGoneError, and no claim, when that offer is no longer open)
    or when the offered agent claims it, withdrawn otherwise."""
    with transaction.atomic():
        fresh = _transition(conversation, "claim", assigned_agent=agent)
        _resolve_offers(fresh, claimed_by=agent, accepting=offer_id)
        now = timezone.now()
        AgentAssignment.objects.create(conversation=fresh, agent=agent, assigned_at=now)
        HandoffRequest.objects.filter(conversation=fresh, status=HandoffRequest.Status.PENDING).update(
            status=HandoffRequest.Status.ACCEPTED, resolved_at=now, updated=now
        )
        events.emit(events.AGENT_ASSIGNED, conversation=fresh, agent_id=agent.pk)
        realtime.publish(
            [realtime.AGENTS_GROUP, realtime.MONITOR_GROUP], realtime.conversation_changed("queue.removed", fresh)
        )
        realtime.publish(
            [fresh.group_name, realtime.MONITOR_GROUP], realtime.conversation_changed("handoff.accepted", fresh)
        )
    return fresh


def take_over(conversation: Conversation, agent: Any) -> Conversation:
    """An agent takes a conversation from the assistant before anyone asked for a person.

    The assistant falls silent at once: a turn already running stores no reply once this commits (see
    conversations.assistant.turns). The contact is told a person joined, as after a claim.
    """
    with transaction.atomic():
        fresh = _transition(conversation, "take_over", assigned_agent=agent)
        AgentAssignment.objects.create(conversation=fresh, agent=agent, assigned_at=timezone.now())
        events.emit(events.TAKEN_OVER, conversation=fresh, agent_id=agent.pk)
        realtime.publish(
            [fresh.group_name, realtime.AGENTS_GROUP, realtime.MONITOR_GROUP],
            realtime.conversation_changed("handoff.accepted", fresh),
        )
    return fresh


def cancel_handoff(conversation: Conversation) -> Conversation:
    """The contact no longer wants a person: back to the assistant."""
    return _leave_queue(
        conversation,
        "cancel_handoff",
        HandoffRequest.Status.CANCELLED,
        events.HANDOFF_CANCELLED,
        "handoff.cancelled",
    )


def expire_handoff(conversation: Conversation) -> Conversation:
    """Nobody claimed the conversation within TALIA_QUEUE_TIMEOUT_S: back to the assistant."""
    return _leave_queue(
        conversation, "expire_handoff", HandoffRequest.Status.EXPIRED, events.HANDOFF_EXPIRED, "handoff.expired"
    )


def _leave_queue(
    conversation: Conversation,
    action: str,
    outcome: HandoffRequest.Status,
    event: events.EventSpec,
    event_type: realtime.ConversationEventType,
) -> Conversation:
    with transaction.atomic():
        fresh = _transition(conversation, action)
        _resolve_offers(fresh)
        now = timezone.now()
        HandoffRequest.objects.filter(conversation=fresh, status=HandoffRequest.Status.PENDING).update(
            status=outcome, resolved_at=now, updated=now
        )
        events.emit(event, conversation=fresh)
        realtime.publish(
            [realtime.AGENTS_GROUP, realtime.MONITOR_GROUP], realtime.conversation_changed("queue.removed", fresh)
        )
        realtime.publish([fresh.group_name], realtime.conversation_changed(event_type, fresh))
    return fresh


def hand_back_to_assistant(conversation: Conversation) -> Conversation:
    """The agent returns the conversation to the assistant, which answers the next message."""
    with transaction.atomic():
        fresh = _transition(conversation, "hand_back", assigned_agent=None)
        released = _release_assignment(fresh, AgentAssignment.ReleaseReason.HANDED_BACK)
        events.emit(events.HANDED_BACK, conversation=fresh, agent_ids=released)
        realtime.publish(
            [fresh.group_name, realtime.AGENTS_GROUP, realtime.MONITOR_GROUP],
            realtime.conversation_changed("conversation.handed_back", fresh),
        )
    return fresh


def close_conversation(conversation: Conversation, *, ended_by: str, reason: str = "") -> Conversation:
    """Close from any open status. A later message from the contact opens a new conversation."""
    with transaction.atomic():
        # Lock first so the status we branch on is the one we transition from.
        previous = Conversation.objects.select_for_update().filter(pk=conversation.pk).values_list("status", flat=True)
        was_queued = previous.first() == QUEUED
        now = timezone.now()
        fresh = _transition(conversation, "close", closed_at=now)
        if was_queued:
            _resolve_offers(fresh)
        _release_assignment(fresh, AgentAssignment.ReleaseReason.CLOSED)
        HandoffRequest.objects.filter(conversation=fresh, status=HandoffRequest.Status.PENDING).update(
            status=HandoffRequest.Status.CLOSED, resolved_at=now, updated=now
        )
        events.emit(events.CONVERSATION_CLOSED, conversation=fresh, ended_by=ended_by, reason=reason)
        if was_queued:
            realtime.publish(
                [realtime.AGENTS_GROUP, realtime.MONITOR_GROUP],
                realtime.conversation_changed("queue.removed", fresh),
            )
        realtime.publish(
            [fresh.group_name, realtime.AGENTS_GROUP, realtime.MONITOR_GROUP],
            realtime.conversation_changed("conversation.closed", fresh),
        )
        conversation_id = str(fresh.pk)
        # If Redis is down the summary page falls back to an extractive summary.
        enqueue.after_commit("conversations.tasks.summarize_conversation", conversation_id, what="summary")
    return fresh


def transfer_to_agent(conversation: Conversation, to_agent: Any, *, by: Any, note: str) -> Conversation:
    """Give the conversation an agent is handling to another agent, with a note they read first.

    The status stays `agent`; the assignee changes in one conditional UPDATE (from whoever handles it
    now), the old assignment is released as transferred and a new one starts. The hand-off's brief stays
    with the conversation. Raises TransitionError when it is not with an agent any more.
    """
    with transaction.atomic():
        current = Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        if current is None:
            raise Conversation.DoesNotExist(f"Conversation {conversation.pk} does not exist.")
        if current.status != AGENT:
            raise TransitionError(conversation.pk, "transfer", current.status)
        from_agent_id = current.assigned_agent_id
        Conversation.objects.filter(pk=current.pk, status=AGENT).update(assigned_agent=to_agent, updated=timezone.now())
        fresh = Conversation.objects.select_related("contact", "assigned_agent", "team").get(pk=current.pk)
        conversation.assigned_agent = fresh.assigned_agent
        _release_assignment(fresh, AgentAssignment.ReleaseReason.TRANSFERRED)
        AgentAssignment.objects.create(conversation=fresh, agent=to_agent, assigned_at=timezone.now())
        _transfer_note(
            fresh, by, note, from_agent_id, to_agent_id=to_agent.pk, from_team_id=fresh.team_id, to_team_id=None
        )
        realtime.publish(
            [realtime.AGENTS_GROUP, realtime.MONITOR_GROUP, realtime.agent_group(to_agent.pk)],
            realtime.transferred(fresh),
        )
    return fresh


def transfer_to_team(conversation: Conversation, team: Team, *, by: Any, note: str) -> Conversation:
    """Put the conversation an agent is handling back in a team's queue, with a note.

    A new pending HandoffRequest (requested by an agent, the note as its reason) carries the earlier
    brief, so whoever claims it reads the same brief; a team with auto-assignment gets it offered.
    """
    with transaction.atomic():
        previous = (
            Conversation.objects.select_for_update()
            .filter(pk=conversation.pk)
            .values_list("assigned_agent_id", "team_id")
        )
        from_agent_id, from_team_id = previous.first() or (None, None)
        fresh = _transition(conversation, "transfer_to_team", team=team, assigned_agent=None)
        _release_assignment(fresh, AgentAssignment.ReleaseReason.TRANSFERRED)
        brief = HandoffRequest.objects.filter(conversation=fresh).order_by("-created").first()
        handoff = HandoffRequest.objects.create(
            conversation=fresh,
            requested_by=HandoffRequest.RequestedBy.AGENT,
            reason=note,
            out_of_hours=not profile.current().is_open(),
            brief_summary=brief.brief_summary if brief else "",
            brief_topics=brief.brief_topics if brief else [],
        )
        _transfer_note(fresh, by, note, from_agent_id, to_agent_id=None, from_team_id=from_team_id, to_team_id=team.pk)
        realtime.publish([realtime.AGENTS_GROUP, realtime.MONITOR_GROUP], realtime.transferred(fresh))
        # The contact's widget: waiting for a person again.
        realtime.publish([fresh.group_name], realtime.conversation_changed("handoff.requested", fresh))
        realtime.publish(realtime.queue_groups(team.pk), realtime.queue_added(fresh, out_of_hours=handoff.out_of_hours))
        _offer(fresh, exclude=from_agent_id)  # not straight back to whoever transferred it
    return fresh


def move_to_team(conversation: Conversation, team: Team, *, by: Any, note: str) -> Conversation:
    """Move a conversation waiting in one queue to another team's queue, with a note.

    The row is locked first, so the team it leaves is the one recorded; the move is then the conditional
    UPDATE from `queued` (of a move and a concurrent claim, one wins; the loser gets TransitionError, and
    SameTeamError when it already waits there). The pending HandoffRequest stays: its brief and the time
    already waited travel with the conversation. The old queue hears `queue.removed`, the new one
    `queue.added`, and a team with auto-assignment gets it offered.
    """
    with transaction.atomic():
        locked = (
            Conversation.objects.select_for_update().filter(pk=conversation.pk).values_list("team_id", "status").first()
        )
        from_team_id, current = locked if locked is not None else (None, None)
        if current == QUEUED and from_team_id == team.pk:
            raise SameTeamError(conversation.pk, "move_to_team", QUEUED)
        fresh = _transition(conversation, "move_to_team", team=team)
        _transfer_note(fresh, by, note, None, to_agent_id=None, from_team_id=from_team_id, to_team_id=team.pk)
        pending = HandoffRequest.objects.filter(conversation=fresh, status=HandoffRequest.Status.PENDING)
        out_of_hours = pending.filter(out_of_hours=True).exists()
        waiting_since = pending.aggregate(since=Min("created"))["since"]
        # Every agent's queue page drops the row (the old team's, the unrouted one); the new team's adds it.
        realtime.publish(
            [realtime.AGENTS_GROUP, realtime.MONITOR_GROUP], realtime.conversation_changed("queue.removed", fresh)
        )
        realtime.publish([realtime.AGENTS_GROUP, realtime.MONITOR_GROUP], realtime.transferred(fresh))
        realtime.publish(
            realtime.queue_groups(team.pk),
            realtime.queue_added(fresh, out_of_hours=out_of_hours, queued_at=waiting_since),
        )
        _resolve_offers(fresh)  # an offer to the old team's agent is withdrawn; the new team's comes after
        _offer(fresh)
    return fresh


def _transfer_note(
    conversation: Conversation,
    by: Any,
    note: str,
    from_agent_id: int | None,
    *,
    to_agent_id: int | None,
    from_team_id: int | None,
    to_team_id: int | None,
) -> None:
    written = InternalNote.objects.create(conversation=conversation, author=by, text=note)
    events.emit(
        events.TRANSFERRED,
        conversation=conversation,
        from_agent_id=from_agent_id,
        to_agent_id=to_agent_id,
        from_team_id=from_team_id,
        to_team_id=to_team_id,
        note_id=str(written.pk),
        by_id=by.pk if by is not None else None,
    )
    realtime.publish([realtime.staff_group(conversation.pk), realtime.MONITOR_GROUP], realtime.note_added(written))


def _release_assignment(conversation: Conversation, reason: str) -> list[int]:
    """End the active assignment, if any; returns the ids of the agents released."""
    active = AgentAssignment.objects.filter(conversation=conversation, released_at__isnull=True)
    agent_ids = list(active.values_list("agent_id", flat=True))
    active.update(released_at=timezone.now(), release_reason=reason)
    return agent_ids
