"""Supervisors (issue #17): the monitor's per-team queues and waits, agents' states and loads, and
reassigning a conversation from the monitor."""

from __future__ import annotations

import pytest

from conversations import events, inbox, state
from conversations.console import presence
from conversations.models import (
    AgentAssignment,
    ConversationStatus,
    Event,
    InternalNote,
)
from conversations.tests.console_helpers import api, queued, signed_in

QUEUED, AGENT = ConversationStatus.QUEUED, ConversationStatus.AGENT


# --- Permission matrix -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "expected"), [("anonymous", 403), ("visitor", 403), ("agent", 403), ("staff", 200)])
def test_only_supervisors_may_reassign(people, desk, who, expected):
    conversation = queued("reassign-matrix-01", reason="precio")

    response = api(signed_in(people[who]), conversation, "reassign", {"agent": desk["bruno"].pk})

    assert response.status_code == expected
    conversation.refresh_from_db()
    if expected == 200:
        assert (conversation.status, conversation.assigned_agent_id) == (AGENT, desk["bruno"].pk)
    else:
        assert (conversation.status, conversation.assigned_agent_id) == (QUEUED, None)
        assert not AgentAssignment.objects.filter(conversation=conversation).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "non_field_errors"), ({"agent": 1, "team": 1}, "non_field_errors"), ({"agent": "x"}, "agent")],
)
def test_a_reassign_names_exactly_one_agent_or_team(desk, body, field):
    conversation = queued("reassign-invalid-01", reason="precio")

    response = api(signed_in(desk["boss"]), conversation, "reassign", body)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


# --- Queued and assigned ---------------------------------------------------------------------------------


def test_a_supervisor_gives_a_queued_conversation_to_an_agent_of_another_team(desk):
    conversation = queued("reassign-queued-01", reason="precio")  # Ventas' queue; Bruno is in Soporte
    assert conversation.team == desk["sales"]

    response = api(signed_in(desk["boss"]), conversation, "reassign", {"agent": desk["bruno"].pk, "note": "VIP"})

    assert response.status_code == 200
    assert response.json()["conversation"]["status"] == AGENT
    [assignment] = AgentAssignment.objects.filter(conversation=conversation)
    assert (assignment.agent_id, assignment.released_at) == (desk["bruno"].pk, None)
    assigned = Event.objects.get(conversation=conversation, name=events.AGENT_ASSIGNED.name)
    assert assigned.payload["agent_id"] == desk["bruno"].pk
    [note] = InternalNote.objects.filter(conversation=conversation)
    assert (note.author_id, note.text) == (desk["boss"].pk, "VIP")


def test_a_supervisor_moves_a_handled_conversation_to_another_agent_and_then_to_a_team(desk):
    conversation = queued("reassign-agent-01", reason="precio")
    state.claim_conversation(conversation, desk["ana"])
    client = signed_in(desk["boss"])

    to_bruno = api(client, conversation, "reassign", {"agent": desk["bruno"].pk})
    assert to_bruno.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent_id) == (AGENT, desk["bruno"].pk)
    released, current = AgentAssignment.objects.filter(conversation=conversation).order_by("assigned_at", "pk")
    assert (released.agent_id, released.release_reason) == (desk["ana"].pk, AgentAssignment.ReleaseReason.TRANSFERRED)
    assert (current.agent_id, current.released_at) == (desk["bruno"].pk, None)
    transfer = Event.objects.get(conversation=conversation, name=events.TRANSFERRED.name)
    assert transfer.payload["from_agent_id"] == desk["ana"].pk
    assert transfer.payload["to_agent_id"] == desk["bruno"].pk
    assert transfer.payload["by_id"] == desk["boss"].pk
    # No note given: a default one says who reassigned it.
    assert InternalNote.objects.get(pk=transfer.payload["note_id"]).text

    to_support = api(client, conversation, "reassign", {"team": desk["support"].pk, "note": "Es de facturas"})
    assert to_support.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.status, conversation.team_id, conversation.assigned_agent_id) == (
        QUEUED,
        desk["support"].pk,
        None,
    )
    assert not AgentAssignment.objects.filter(conversation=conversation, released_at__isnull=True).exists()
    assert Event.objects.filter(conversation=conversation, name=events.TRANSFERRED.name).count() == 2


def test_what_cannot_be_reassigned_is_refused_with_a_reason(desk):
    client = signed_in(desk["boss"])
    waiting = queued("reassign-refused-01", reason="precio")
    with_bot = inbox.receive("web", "reassign-refused-02", "Hola", assistant_turn=False).conversation

    same_team = api(client, waiting, "reassign", {"team": desk["sales"].pk})
    from_bot = api(client, with_bot, "reassign", {"agent": desk["ana"].pk})
    not_an_agent = api(client, waiting, "reassign", {"agent": 999999})

    assert (same_team.status_code, same_team.json()["error"]["code"]) == (409, "same_team")
    assert (from_bot.status_code, from_bot.json()["error"]["code"]) == (409, "not_reassignable")
    assert (not_an_agent.status_code, not_an_agent.json()["error"]["code"]) == (409, "unknown_agent")
    waiting.refresh_from_db()
    assert waiting.status == QUEUED


# --- The monitor page -------------------------------------------------------------------------------------


def test_the_monitor_shows_each_teams_queue_and_the_agents_states_and_loads(desk, online):
    queued("monitor-sales-01", reason="precio")
    queued("monitor-sales-02", reason="precio")
    handled = queued("monitor-support-01", reason="factura")
    queued("monitor-none-01", reason="otra cosa")
    state.claim_conversation(handled, desk["bruno"])
    online(desk["ana"], desk["bruno"])
    presence.set_state(desk["bruno"].pk, "away")

    page = signed_in(desk["boss"]).get("/console/monitor/", HTTP_ACCEPT_LANGUAGE="en")

    assert page.status_code == 200
    queues = {queue["name"]: queue for queue in page.context["team_queues"]}
    assert list(queues) == ["Soporte", "Ventas", "No team"]
    assert (queues["Ventas"]["waiting"], queues["Soporte"]["waiting"], queues["No team"]["waiting"]) == (2, 0, 1)
    assert queues["Ventas"]["oldest"] is not None and queues["Soporte"]["oldest"] is None
    agents = {row["agent"].get_username(): row for row in page.context["agent_rows"]}
    assert (agents["ana"]["state"], agents["ana"]["load"], agents["ana"]["capacity"]) == ("online", 0, 3)
    assert (agents["bruno"]["state"], agents["bruno"]["load"], agents["bruno"]["capacity"]) == ("away", 1, 4)
    assert (agents["boss"]["state"], agents["boss"]["capacity"]) == ("offline", None)
    body = page.content.decode()
    assert 'data-team-queue="' + str(desk["sales"].pk) + '"' in body
    assert 'data-state="away"' in body and "1 / 4" in body
