"""The dashboard's team filter and its per-team table (issue #17, "Supervisors"): real conversations routed
to teams through the state machine, counted, never timed."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from conversations import inbox, state
from conversations.models import Conversation, HandoffRequest, Sender, Team
from conversations.tests.console_helpers import signed_in
from leads import kpis, pipeline

pytestmark = pytest.mark.urls("leads.tests.dashboard_test_urls")

PAGE = "/console/dashboard/"
LEADS_CSV = "/console/dashboard/leads.csv"
CONVERSATIONS_CSV = "/console/dashboard/conversations.csv"


def rows_of(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def handled(identity: str, reason: str, agent: Any, *, replies: int, close: bool) -> Conversation:
    """A web visitor asks for a person (routed by `reason`), `agent` claims and answers, then maybe closes."""
    conversation = inbox.receive("web", identity, "Hola, quiero hablar con alguien").conversation
    state.request_handoff(conversation, requested_by=HandoffRequest.RequestedBy.CONTACT, reason=reason)
    state.claim_conversation(conversation, agent)
    for n in range(replies):
        inbox.send(conversation, f"Respuesta {n}", sender=Sender.AGENT, agent=agent)
    if close:
        state.close_conversation(conversation, ended_by="agent")
    conversation.refresh_from_db()
    return conversation


@pytest.fixture
def desk(db: None) -> dict[str, Any]:
    """Ventas: Lucía (Ana answers and closes, a lead) and Pablo (Ana answers, open). Soporte: Rosa (Beto
    claims, never answers). No team: Tomás (Beto answers and closes). And a whatsapp chat nobody took."""
    users = get_user_model().objects
    ana = users.create_user("ana", first_name="Ana", is_staff=True)
    beto = users.create_user("beto", first_name="Beto", is_staff=True)
    sales = Team.objects.create(name="Ventas", keywords="precio", auto_assign=False)
    support = Team.objects.create(name="Soporte", keywords="factura", auto_assign=False)
    lucia = handled("session-lucia-0001", "precio", ana, replies=2, close=True)
    pipeline.card_for(lucia.contact, lucia, "assistant")
    pablo = handled("session-pablo-0001", "precio", ana, replies=1, close=False)
    rosa = handled("session-rosa-00001", "factura", beto, replies=0, close=False)
    pipeline.card_for(rosa.contact, rosa, "assistant")
    handled("session-tomas-0001", "otra cosa", beto, replies=1, close=True)
    inbox.receive("whatsapp", "+34600000042", "Hola")
    assert (lucia.team, pablo.team, rosa.team) == (sales, sales, support)
    return {"sales": sales, "support": support, "lucia": lucia, "pablo": pablo, "rosa": rosa}


def test_the_team_narrows_every_conversation_figure(desk):
    everything = kpis.report(kpis.Period.last(7)).total
    sales = kpis.report(kpis.Period.last(7, team=desk["sales"].pk)).total
    support = kpis.report(kpis.Period.last(7, team=desk["support"].pk)).total

    assert (everything.conversations, everything.handed_off, everything.leads) == (5, 4, 2)
    assert (sales.conversations, sales.handed_off, sales.leads) == (2, 2, 1)
    assert (support.conversations, support.handed_off, support.leads) == (1, 1, 1)
    assert sales.messages == desk["lucia"].messages.count() + desk["pablo"].messages.count()
    sales_agents = kpis.agent_figures(kpis.Period.last(7, team=desk["sales"].pk))
    assert [(row.name, row.assignments, row.answered, row.resolved) for row in sales_agents] == [("Ana", 2, 2, 1)]


def test_each_team_and_no_team_has_assignments_answers_and_resolutions(desk):
    rows = kpis.team_figures(kpis.Period.last(7))

    assert [(row.name, row.assignments, row.answered, row.resolved) for row in rows] == [
        ("Soporte", 1, 0, 0),
        ("Ventas", 2, 2, 1),
        ("", 1, 1, 1),  # no team, last
    ]
    assert rows[-1].team_id is None
    sales = rows[1]
    assert sales.first_response_median_s is not None and sales.resolution_median_s is not None
    assert (rows[0].first_response_median_s, rows[0].resolution_median_s) == (None, None)
    # The team filter leaves only that team's row.
    only_support = kpis.team_figures(kpis.Period.last(7, team=desk["support"].pk))
    assert [(row.team_id, row.assignments) for row in only_support] == [(desk["support"].pk, 1)]


def test_the_page_offers_the_teams_shows_the_team_table_and_narrows_the_exports(desk):
    supervisor = get_user_model().objects.create_user("sara", is_staff=True)
    client = signed_in(supervisor)

    page = client.get(PAGE, {"team": desk["sales"].pk}, HTTP_ACCEPT_LANGUAGE="en")
    everything = client.get(PAGE, HTTP_ACCEPT_LANGUAGE="en")

    html = page.content.decode()
    assert page.status_code == 200
    assert f'<option value="{desk["sales"].pk}" selected>Ventas</option>' in html
    assert "Soporte</option>" in html
    assert f"team={desk['sales'].pk}" in page.context["query"]
    assert [name for name, _cells in page.context["team_rows"]] == ["Ventas"]
    assert [name for name, _cells in everything.context["team_rows"]] == ["Soporte", "Ventas", "No team"]
    assert 'id="team-table"' in everything.content.decode()
    conversations = rows_of(client.get(CONVERSATIONS_CSV, {"team": desk["sales"].pk}))
    assert {row[0] for row in conversations[1:]} == {str(desk["lucia"].pk), str(desk["pablo"].pk)}
    leads = rows_of(client.get(LEADS_CSV, {"team": desk["support"].pk}))
    assert len(leads) == 2  # the header and Rosa's card
    board = [column.total for column in page.context["columns"]]
    assert sum(board) == 1  # Lucía's card only


def test_an_unknown_team_is_reported_and_ignored(desk):
    supervisor = get_user_model().objects.create_user("sara", is_staff=True)

    page = signed_in(supervisor).get(PAGE, {"team": 999999}, HTTP_ACCEPT_LANGUAGE="en")

    assert page.status_code == 200
    assert page.context["range_errors"]
    assert page.context["period"].team is None


def test_the_by_agent_and_by_team_tables_share_one_layout(desk):
    """Both sections come from one include (leads/_response_table.html): the same columns after the first,
    each table in a labelled, keyboard-reachable scroll region."""
    supervisor = get_user_model().objects.create_user("sara", is_staff=True)

    html = signed_in(supervisor).get(PAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    headers = {}
    for key in ("agent", "team"):
        section = html[html.index(f'<section class="panel" aria-labelledby="{key}s-title">') :]
        section = section[: section.index("</section>")]
        assert f'<div class="table-scroll" tabindex="0" role="region" aria-labelledby="{key}s-title">' in section
        headers[key] = re.findall(r'<th scope="col">([^<]*)</th>', section)
    assert headers["agent"][0] == "Agent" and headers["team"][0] == "Team"
    assert headers["agent"][1:] == headers["team"][1:] and "Resolution (median)" in headers["agent"]
