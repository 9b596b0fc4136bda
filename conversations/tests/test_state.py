"""The state machine: every legal and illegal transition, atomic claims, events written with the change."""

from __future__ import annotations

import itertools

import pytest
from django.db import transaction

from conversations import events, inbox, state
from conversations.models import (
    AgentAssignment,
    Conversation,
    ConversationStatus,
    Event,
    HandoffRequest,
    Team,
)
from conversations.tests.test_inbox import run_concurrently

BOT, QUEUED, AGENT, CLOSED = "bot", "queued", "agent", "closed"

# The design's transitions (ARCHITECTURE.md, "Conversation states"), written out independently.
DESIGN = {
    (BOT, QUEUED),  # visitor asks for a human, request_human, or admin routes it
    (QUEUED, AGENT),  # an agent claims it
    (BOT, AGENT),  # an agent takes it over from the assistant before anyone asked (issue #17's manual mode)
    (AGENT, CLOSED),
    (AGENT, BOT),  # agent hands back
    (QUEUED, BOT),  # visitor cancels, or nobody claims it within the queue timeout
    (BOT, CLOSED),
    (QUEUED, CLOSED),
    (AGENT, QUEUED),  # an agent transfers it to a team's queue (issue #17's routing)
    (QUEUED, QUEUED),  # a waiting conversation moves to another team's queue (the team changes)
}


def test_the_transition_table_is_exactly_the_design():
    assert state.LEGAL_TRANSITIONS == DESIGN


def conversation_in(status: str, agent) -> Conversation:
    """A web conversation brought to `status` through the state machine itself."""
    conversation = inbox.receive("web", f"session-{status}-0001", "Hola").conversation
    if status in (QUEUED, AGENT):
        state.request_handoff(conversation, requested_by="contact", reason="test")
    if status == AGENT:
        state.claim_conversation(conversation, agent)
    if status == CLOSED:
        state.close_conversation(conversation, ended_by="contact")
    conversation.refresh_from_db()
    assert conversation.status == status
    return conversation


ACTIONS = {
    "request_handoff": lambda c, agent: state.request_handoff(c, requested_by="contact"),
    "claim": lambda c, agent: state.claim_conversation(c, agent),
    "take_over": lambda c, agent: state.take_over(c, agent),
    "cancel_handoff": lambda c, agent: state.cancel_handoff(c),
    "expire_handoff": lambda c, agent: state.expire_handoff(c),
    "hand_back": lambda c, agent: state.hand_back_to_assistant(c),
    "close": lambda c, agent: state.close_conversation(c, ended_by="agent"),
    "transfer_to_team": lambda c, agent: state.transfer_to_team(
        c, Team.objects.get_or_create(name="Sales")[0], by=agent, note="for sales"
    ),
}
# action -> (statuses it may start from, status it leads to), as the design describes each one.
EXPECTED = {
    "request_handoff": ({BOT}, QUEUED),
    "claim": ({QUEUED}, AGENT),
    "take_over": ({BOT}, AGENT),
    "cancel_handoff": ({QUEUED}, BOT),
    "expire_handoff": ({QUEUED}, BOT),
    "hand_back": ({AGENT}, BOT),
    "close": ({BOT, QUEUED, AGENT}, CLOSED),
    "transfer_to_team": ({AGENT}, QUEUED),
}


@pytest.mark.parametrize(("action", "start"), list(itertools.product(ACTIONS, [BOT, QUEUED, AGENT, CLOSED])))
def test_every_action_from_every_status(db, agent, action, start):
    conversation = conversation_in(start, agent)
    events_before = Event.objects.count()
    sources, target = EXPECTED[action]

    if start in sources:
        ACTIONS[action](conversation, agent)
        conversation.refresh_from_db()
        assert conversation.status == target
        assert Event.objects.count() == events_before + 1
    else:
        with pytest.raises(state.TransitionError) as refused:
            ACTIONS[action](conversation, agent)
        assert refused.value.current == start
        conversation.refresh_from_db()
        assert conversation.status == start
        assert Event.objects.count() == events_before


def test_claim_assigns_agent_and_accepts_the_handoff(db, agent):
    conversation = conversation_in(QUEUED, agent)

    claimed = state.claim_conversation(conversation, agent)

    assert claimed.assigned_agent == agent
    assignment = AgentAssignment.objects.get(conversation=conversation)
    assert assignment.agent == agent and assignment.released_at is None
    assert HandoffRequest.objects.get(conversation=conversation).status == HandoffRequest.Status.ACCEPTED
    assert Event.objects.filter(name=events.AGENT_ASSIGNED.name, payload__agent_id=agent.pk).exists()


def test_hand_back_releases_the_agent(db, agent):
    conversation = conversation_in(AGENT, agent)

    state.hand_back_to_assistant(conversation)

    conversation.refresh_from_db()
    assert conversation.assigned_agent is None
    assert AgentAssignment.objects.get(conversation=conversation).release_reason == "handed_back"


def test_close_sets_closed_at_and_closes_a_pending_handoff(db, agent):
    conversation = conversation_in(QUEUED, agent)

    state.close_conversation(conversation, ended_by="contact", reason="left")

    conversation.refresh_from_db()
    assert conversation.closed_at is not None
    assert HandoffRequest.objects.get(conversation=conversation).status == HandoffRequest.Status.CLOSED
    event = Event.objects.get(name=events.CONVERSATION_CLOSED.name)
    assert event.payload == {"ended_by": "contact", "reason": "left"}


def test_claim_by_second_agent_is_refused(db, make_agent):
    first, second = make_agent("ana"), make_agent("bruno")
    conversation = conversation_in(QUEUED, first)
    state.claim_conversation(conversation, first)

    with pytest.raises(state.AlreadyClaimedError):
        state.claim_conversation(conversation, second)


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_claims_have_exactly_one_winner(make_agent):
    agents = [make_agent(f"agent{i:02d}") for i in range(20)]
    conversation = inbox.receive("web", "session-popular-01", "¿Hay alguien?").conversation
    state.request_handoff(conversation, requested_by="contact")

    def claim(index: int) -> str:
        try:
            state.claim_conversation(Conversation.objects.get(pk=conversation.pk), agents[index])
            return "won"
        except state.AlreadyClaimedError:
            return "lost"

    outcomes = run_concurrently(claim, 20)

    assert outcomes.count("won") == 1
    assert outcomes.count("lost") == 19
    winner = agents[outcomes.index("won")]
    conversation.refresh_from_db()
    assert conversation.assigned_agent == winner
    assert AgentAssignment.objects.filter(conversation=conversation).count() == 1
    assert Event.objects.filter(name=events.AGENT_ASSIGNED.name).count() == 1


@pytest.mark.django_db(transaction=True)
def test_event_rolls_back_with_the_change_it_records(agent):
    conversation = inbox.receive("web", "session-rollback-1", "Hola").conversation

    with pytest.raises(RuntimeError), transaction.atomic():
        state.request_handoff(conversation, requested_by="contact")
        raise RuntimeError("the surrounding work failed")

    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.BOT
    assert not Event.objects.filter(name=events.HANDOFF_REQUESTED.name).exists()
    assert not HandoffRequest.objects.exists()
