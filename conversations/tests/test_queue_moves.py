"""Moving a waiting conversation to another team's queue (issue #17, "Transfer a conversation to another
agent or team"): who may, what travels with it, what is recorded and pushed, and the new team's
auto-assignment."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import events, realtime, state
from conversations.models import (
    AgentAssignment,
    AssignmentOffer,
    ConversationStatus,
    Event,
    HandoffRequest,
    InternalNote,
    Team,
)
from conversations.tests.console_helpers import api, console_socket, next_of, queued, ready, signed_in
from conversations.tests.test_inbox import run_concurrently

QUEUED, AGENT = ConversationStatus.QUEUED, ConversationStatus.AGENT


def move(user, conversation, **body):
    return api(signed_in(user), conversation, "transfer", body)


def test_an_agent_moves_a_conversation_waiting_in_their_teams_queue_to_another_team(
    desk, listen, django_capture_on_commit_callbacks
):
    waiting = queued("move-sales-0001", reason="precio")  # Ventas' queue: Ana's team
    HandoffRequest.objects.filter(conversation=waiting).update(brief_summary="Pregunta por una factura duplicada.")
    asked = HandoffRequest.objects.get(conversation=waiting)
    every_agent = listen(realtime.AGENTS_GROUP)
    support_queue = listen(realtime.team_group(desk["support"].pk))

    with django_capture_on_commit_callbacks(execute=True):
        moved = move(desk["ana"], waiting, team=desk["support"].pk, note="Es de facturación, no de ventas")

    assert moved.status_code == 200
    assert moved.json()["conversation"]["team"] == "Soporte" and moved.json()["next"] == "/console/"
    waiting.refresh_from_db()
    assert (waiting.status, waiting.team_id, waiting.assigned_agent_id) == (QUEUED, desk["support"].pk, None)
    # The same pending hand-off: its brief and the time already waited go with it.
    [pending] = HandoffRequest.objects.filter(conversation=waiting, status=HandoffRequest.Status.PENDING)
    assert (pending.pk, pending.created, pending.brief_summary) == (
        asked.pk,
        asked.created,
        "Pregunta por una factura duplicada.",
    )
    note = InternalNote.objects.get(conversation=waiting)
    assert (note.author_id, note.text) == (desk["ana"].pk, "Es de facturación, no de ventas")
    [event] = Event.objects.filter(conversation=waiting, name=events.TRANSFERRED.name)
    assert event.payload == {
        "from_agent_id": None,
        "to_agent_id": None,
        "from_team_id": desk["sales"].pk,
        "to_team_id": desk["support"].pk,
        "note_id": str(note.pk),
        "by_id": desk["ana"].pk,
    }
    assert not AgentAssignment.objects.filter(conversation=waiting).exists()
    # Every queue page drops the row; the new team's queue adds it, with the team's name.
    removed = every_agent.receive()
    assert removed is not None and (removed["type"], removed["conversation_id"]) == ("queue.removed", str(waiting.pk))
    transferred = every_agent.receive()
    assert transferred is not None and (transferred["type"], transferred["to_team_id"], transferred["team_name"]) == (
        "conversation.transferred",
        desk["support"].pk,
        "Soporte",
    )
    added = support_queue.receive()
    assert added is not None and (added["type"], added["team_id"]) == ("queue.added", desk["support"].pk)
    assert added["queued_at"] == asked.created.isoformat()  # the new queue's row shows the whole wait
    # Ana no longer sees it; Bruno (Soporte) does, reads the brief and the note, and claims it.
    assert signed_in(desk["ana"]).get(f"/console/conversations/{waiting.pk}/").status_code == 302
    page = signed_in(desk["bruno"]).get(f"/console/conversations/{waiting.pk}/").content.decode()
    assert "Pregunta por una factura duplicada." in page and "no de ventas" in page
    assert api(signed_in(desk["bruno"]), waiting, "claim").status_code == 200


@pytest.mark.parametrize(
    ("who", "body", "status", "code"),
    [
        ("bruno", {"team": "support", "note": "mío"}, 409, "forbidden"),  # waits in Ventas: not his team
        ("ana", {"agent": "bruno", "note": "a Bruno"}, 409, "queue_to_team_only"),
        ("ana", {"team": "sales", "note": "otra vez"}, 409, "same_team"),
        ("ana", {"team": 999999, "note": "x"}, 409, "unknown_team"),
        ("ana", {"team": "support", "note": "   "}, 400, "invalid"),
        ("ana", {"team": "soporte", "note": "x"}, 400, "invalid"),
        ("ana", {"note": "sin destino"}, 400, "invalid"),
        ("customer", {"team": "support", "note": "x"}, 403, None),
    ],
)
def test_moves_that_are_not_allowed_or_malformed_are_refused_with_a_json_error(desk, people, who, body, status, code):
    waiting = queued("move-refused-01", reason="precio")
    user = people["visitor"] if who == "customer" else desk[who]
    named = {key: desk[value].pk if value in ("support", "sales", "bruno") else value for key, value in body.items()}

    refused = move(user, waiting, **named)

    assert refused.status_code == status
    assert "error" in refused.json()
    if code:
        assert refused.json()["error"]["code"] == code
    waiting.refresh_from_db()
    assert (waiting.status, waiting.team_id) == (QUEUED, desk["sales"].pk)
    assert not Event.objects.filter(conversation=waiting, name=events.TRANSFERRED.name).exists()


def test_a_supervisor_moves_any_waiting_conversation_and_an_agent_routes_an_unrouted_one(desk):
    for_support = queued("move-boss-0001", reason="factura")
    unrouted = queued("move-anyone-001", reason="quiere una persona")

    by_boss = move(desk["boss"], for_support, team=desk["sales"].pk, note="Quiere ampliar el contrato")
    # The unrouted queue is every agent's: Bruno may send it to a team.
    by_bruno = move(desk["bruno"], unrouted, team=desk["sales"].pk, note="Pregunta precios")
    # From the monitor: a team for a waiting conversation moves it too (a default note names the supervisor).
    back = api(signed_in(desk["boss"]), for_support, "reassign", {"team": desk["support"].pk})

    assert (by_boss.status_code, by_bruno.status_code, back.status_code) == (200, 200, 200)
    unrouted.refresh_from_db()
    for_support.refresh_from_db()
    assert unrouted.team_id == desk["sales"].pk and for_support.team_id == desk["support"].pk
    moves = Event.objects.filter(conversation=for_support, name=events.TRANSFERRED.name).order_by("created", "pk")
    assert [(e.payload["from_team_id"], e.payload["to_team_id"], e.payload["by_id"]) for e in moves] == [
        (desk["support"].pk, desk["sales"].pk, desk["boss"].pk),
        (desk["sales"].pk, desk["support"].pk, desk["boss"].pk),
    ]
    assert InternalNote.objects.get(pk=moves[1].payload["note_id"]).text  # the default note
    [routed] = Event.objects.filter(conversation=unrouted, name=events.TRANSFERRED.name)
    assert (routed.payload["from_team_id"], routed.payload["to_team_id"]) == (None, desk["sales"].pk)


@pytest.mark.django_db(transaction=True)
def test_the_new_teams_auto_assignment_runs_after_the_move(desk, online):
    Team.objects.filter(pk=desk["support"].pk).update(auto_assign=True)
    waiting = queued("move-auto-0001", reason="precio")  # Ventas: no auto-assignment, it waits
    online(desk["ana"], desk["bruno"])
    assert waiting.status == QUEUED

    assert move(desk["ana"], waiting, team=desk["support"].pk, note="Para soporte").status_code == 200

    waiting.refresh_from_db()
    assert waiting.status == QUEUED  # offered, not yet taken
    offer = AssignmentOffer.objects.get(conversation=waiting, status=AssignmentOffer.Status.PENDING)
    assert (offer.agent_id, offer.team_id) == (desk["bruno"].pk, desk["support"].pk)


@pytest.mark.django_db(transaction=True)
def test_a_move_withdraws_the_old_teams_offer_and_the_new_team_offers_it(desk, online):
    Team.objects.filter(pk__in=[desk["sales"].pk, desk["support"].pk]).update(auto_assign=True)
    online(desk["ana"], desk["bruno"])
    waiting = queued("move-auto-0002", reason="precio")  # Ventas: offered to Ana
    first = AssignmentOffer.objects.get(conversation=waiting, status=AssignmentOffer.Status.PENDING)
    assert first.agent_id == desk["ana"].pk

    assert move(desk["ana"], waiting, team=desk["support"].pk, note="Mejor soporte").status_code == 200

    first.refresh_from_db()
    assert first.status == AssignmentOffer.Status.WITHDRAWN
    pending = AssignmentOffer.objects.filter(conversation=waiting, status=AssignmentOffer.Status.PENDING)
    assert list(pending.values_list("agent_id", flat=True)) == [desk["bruno"].pk]
    accepted = signed_in(desk["ana"]).post(f"/console/api/offers/{first.pk}/accept")
    assert (accepted.status_code, accepted.json()["error"]["code"]) == (409, "offer_gone")


def test_the_conversation_page_offers_the_other_teams_queues_for_a_waiting_conversation(desk):
    waiting = queued("move-form-0001", reason="precio")

    page = signed_in(desk["ana"]).get(f"/console/conversations/{waiting.pk}/").content.decode()

    assert 'id="move-queue-form"' in page
    assert f'<option value="{desk["support"].pk}">Soporte</option>' in page
    assert f'<option value="{desk["sales"].pk}">' not in page  # where it already waits
    assert 'id="transfer-form"' not in page  # that one is for conversations with an agent


@pytest.mark.django_db(transaction=True)
async def test_the_agents_consoles_hear_the_move_over_their_sockets(desk):
    waiting = await sync_to_async(queued)("move-socket-001", "precio")
    ana = await ready(await sync_to_async(console_socket)(desk["ana"]))
    bruno = await ready(await sync_to_async(console_socket)(desk["bruno"]))
    await ana.send_json_to({"type": "watch", "conversation_id": str(waiting.pk)})
    assert (await next_of(ana, "watching"))["conversation_id"] == str(waiting.pk)

    response = await sync_to_async(move)(desk["ana"], waiting, team=desk["support"].pk, note="Para Bruno")

    assert response.status_code == 200
    assert (await next_of(ana, "queue.removed"))["conversation_id"] == str(waiting.pk)
    told = await next_of(ana, "conversation.transferred")
    assert (told["status"], told["to_team_id"], told["team_name"]) == (QUEUED, desk["support"].pk, "Soporte")
    added = await next_of(bruno, "queue.added")
    assert (added["conversation_id"], added["team_name"]) == (str(waiting.pk), "Soporte")
    for socket in (ana, bruno):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_move_racing_a_claim_leaves_the_row_and_the_events_in_agreement(desk):
    """A move to Soporte and a claim released together: the claim either wins (no move happens) or comes
    after the move (the state machine claims from any queue; the console checks the team first). Either
    way the team on the row is the one the events say."""
    for attempt in range(5):
        waiting = queued(f"move-race-{attempt:04d}", reason="precio")

        def act(index: int, conversation: Any = waiting) -> str:
            try:
                if index == 0:
                    state.move_to_team(conversation, desk["support"], by=desk["boss"], note="A soporte")
                    return "moved"
                state.claim_conversation(conversation, desk["ana"])
                return "claimed"
            except state.TransitionError:
                return "refused"

        outcomes = sorted(run_concurrently(act, 2))
        waiting.refresh_from_db()
        moves = Event.objects.filter(conversation=waiting, name=events.TRANSFERRED.name).count()
        assigned = Event.objects.filter(conversation=waiting, name=events.AGENT_ASSIGNED.name).count()
        assert "claimed" in outcomes and assigned == 1 and waiting.status == AGENT
        if outcomes == ["claimed", "refused"]:
            assert (waiting.team_id, moves) == (desk["sales"].pk, 0)
        else:
            assert outcomes == ["claimed", "moved"] and (waiting.team_id, moves) == (desk["support"].pk, 1)
