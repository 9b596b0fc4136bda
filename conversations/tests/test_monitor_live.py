"""The monitor's figures live (issue #17, "Supervisors"): agents' loads and every team's queue wait are
pushed (`monitor.figures`) when conversations are queued, claimed, transferred, moved or closed, once per
transaction that changed them, never for messages or typing."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import inbox, realtime, state
from conversations.models import Sender
from conversations.tests.console_helpers import api, next_of, queued, ready, signed_in, staff_socket

FIGURES = "monitor.figures"
SENTINEL = {"type": "access.revoked"}  # any envelope: what the monitor group heard before it is counted


def heard_until_sentinel(listener: Any) -> list[dict[str, Any]]:
    """Everything the listener heard up to the sentinel pushed last."""
    realtime._publisher.send([realtime.MONITOR_GROUP], dict(SENTINEL))
    heard = []
    while (event := listener.receive()) is not None and event != SENTINEL:
        heard.append(event)
    assert event == SENTINEL
    return heard


def figures_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == FIGURES]


def test_a_claim_pushes_the_figures_once_and_messages_never_do(desk, listen, django_capture_on_commit_callbacks):
    waiting = queued("figures-claim-01", reason="precio")
    monitor = listen(realtime.MONITOR_GROUP)

    with django_capture_on_commit_callbacks(execute=True):
        state.claim_conversation(waiting, desk["ana"])  # queue.removed and handoff.accepted to the monitor
    claimed = heard_until_sentinel(monitor)

    # Computed after the commit, so whatever its place among the claim's pushes it counts the claim.
    assert sorted(event["type"] for event in claimed) == ["handoff.accepted", FIGURES, "queue.removed"]
    [figures] = figures_of(claimed)
    assert figures["agents"] == [{"id": desk["ana"].pk, "load": 1}]
    assert figures["queues"] == []

    with django_capture_on_commit_callbacks(execute=True):
        inbox.receive("web", "figures-claim-01", "¿Sigue ahí?", assistant_turn=False)
        inbox.send(waiting, "Sí, dígame", sender=Sender.AGENT, agent=desk["ana"])
    assert figures_of(heard_until_sentinel(monitor)) == []


def test_a_reassign_in_one_transaction_pushes_the_figures_once(desk, listen, django_capture_on_commit_callbacks):
    waiting = queued("figures-reassign", reason="factura")
    monitor = listen(realtime.MONITOR_GROUP)

    with django_capture_on_commit_callbacks(execute=True):
        response = api(signed_in(desk["boss"]), waiting, "reassign", {"agent": desk["ana"].pk, "note": "Para Ana"})

    assert response.status_code == 200
    [figures] = figures_of(heard_until_sentinel(monitor))
    assert figures["agents"] == [{"id": desk["ana"].pk, "load": 1}]


def test_the_figures_follow_transfers_moves_and_closes(desk, listen, django_capture_on_commit_callbacks):
    sales, support = desk["sales"].pk, desk["support"].pk
    first = queued("figures-moves-01", reason="precio")
    second = queued("figures-moves-02", reason="precio")
    monitor = listen(realtime.MONITOR_GROUP)

    def after(action: Any) -> dict[str, Any]:
        with django_capture_on_commit_callbacks(execute=True):
            action()
        [figures] = figures_of(heard_until_sentinel(monitor))
        return {
            "loads": {agent["id"]: agent["load"] for agent in figures["agents"]},
            "waiting": {queue["team_id"]: queue["waiting"] for queue in figures["queues"]},
        }

    assert after(lambda: state.claim_conversation(first, desk["ana"])) == {
        "loads": {desk["ana"].pk: 1},
        "waiting": {sales: 1},
    }
    assert after(lambda: state.transfer_to_team(first, desk["support"], by=desk["ana"], note="Factura")) == {
        "loads": {},
        "waiting": {sales: 1, support: 1},
    }
    assert after(lambda: state.move_to_team(second, desk["support"], by=desk["boss"], note="También")) == {
        "loads": {},
        "waiting": {support: 2},
    }
    assert after(lambda: state.claim_conversation(second, desk["bruno"])) == {
        "loads": {desk["bruno"].pk: 1},
        "waiting": {support: 1},
    }
    assert after(lambda: state.close_conversation(second, ended_by="agent")) == {"loads": {}, "waiting": {support: 1}}


@pytest.mark.django_db(transaction=True)
async def test_the_monitor_socket_hears_the_new_load_when_an_agent_claims(desk):
    waiting = await sync_to_async(queued)("figures-socket-1", "precio")
    monitor = await ready(await sync_to_async(staff_socket)(desk["boss"], "/ws/monitor/"))

    response = await sync_to_async(lambda: api(signed_in(desk["ana"]), waiting, "claim"))()

    assert response.status_code == 200
    figures = await next_of(monitor, FIGURES)
    assert figures["agents"] == [{"id": desk["ana"].pk, "load": 1}] and figures["queues"] == []
    await monitor.disconnect()


def test_the_monitor_page_renders_the_figures_it_keeps_live(desk):
    waiting = queued("figures-page-001", reason="precio")
    state.claim_conversation(queued("figures-page-002", reason="factura"), desk["bruno"])

    page = signed_in(desk["boss"]).get("/console/monitor/").content.decode()

    sales_row = f'data-team-queue="{desk["sales"].pk}" data-waiting="1" data-oldest="'
    assert sales_row in page and str(waiting.pk) in page
    assert f'data-agent-id="{desk["bruno"].pk}" data-capacity="4"' in page
