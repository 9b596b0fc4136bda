"""The dashboard's label filter and its per-agent table: real conversations through the real paths (inbox,
state transitions, the label writer, the lead pipeline), counted, never timed."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from conversations import inbox, labels, state
from conversations.models import Conversation, HandoffRequest, Label, Sender
from conversations.tests.console_helpers import signed_in
from leads import kpis, pipeline
from leads.models import ScheduledEvent

pytestmark = pytest.mark.urls("leads.tests.dashboard_test_urls")

PAGE = "/console/dashboard/"
LEADS_CSV = "/console/dashboard/leads.csv"
CONVERSATIONS_CSV = "/console/dashboard/conversations.csv"


def rows_of(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def handled(identity: str, agent: Any, *, replies: int, close: bool) -> Conversation:
    """A web visitor asks for a person, `agent` claims it and answers `replies` times, then maybe closes."""
    conversation = inbox.receive("web", identity, "Hola, quiero hablar con alguien").conversation
    state.request_handoff(conversation, requested_by=HandoffRequest.RequestedBy.CONTACT)
    state.claim_conversation(conversation, agent)
    for n in range(replies):
        inbox.send(conversation, f"Respuesta {n}", sender=Sender.AGENT, agent=agent)
    if close:
        state.close_conversation(conversation, ended_by="agent")
    conversation.refresh_from_db()
    return conversation


@pytest.fixture
def team(db: None) -> dict[str, Any]:
    """Sales-labelled Lucía (Ana answers and closes; a lead with a meeting); unlabelled Pablo (Beto answers,
    still open); unlabelled Rosa (Beto claims, never answers); and a whatsapp chat nobody took."""
    users = get_user_model().objects
    ana = users.create_user("ana", first_name="Ana", is_staff=True)
    beto = users.create_user("beto", first_name="Beto", is_staff=True)
    sales = Label.objects.create(name="Ventas")
    Label.objects.create(name="Soporte")
    lucia = handled("session-lucia-0001", ana, replies=2, close=True)
    labels.set_labels(lucia, [sales.pk])
    card, _ = pipeline.card_for(lucia.contact, lucia, "assistant")
    ScheduledEvent.objects.create(
        title="Demo", start=timezone.now() + timedelta(days=2), contact=lucia.contact, conversation=lucia
    )
    pablo = handled("session-pablo-0001", beto, replies=1, close=False)
    pipeline.card_for(pablo.contact, pablo, "assistant")
    handled("session-rosa-00001", beto, replies=0, close=False)
    inbox.receive("whatsapp", "+34600000042", "Hola")
    return {"ana": ana, "beto": beto, "sales": sales, "lucia": lucia, "pablo": pablo, "card": card}


def test_the_label_narrows_every_conversation_figure(team):
    everything = kpis.report(kpis.Period.last(7)).total
    sales = kpis.report(kpis.Period.last(7, label=team["sales"].pk)).total

    assert (everything.conversations, everything.handed_off, everything.leads, everything.meetings) == (4, 3, 2, 1)
    assert (sales.conversations, sales.handed_off, sales.leads, sales.meetings) == (1, 1, 1, 1)
    assert sales.messages == team["lucia"].messages.count() == 3
    assert everything.messages == Conversation.objects.get(channel="whatsapp").messages.count() + 3 + 2 + 1


def test_a_label_no_conversation_carries_empties_the_figures(team):
    support = Label.objects.get(name="Soporte")

    report = kpis.report(kpis.Period.last(7, label=support.pk))

    assert (report.total.conversations, report.total.leads, report.total.handoff_rate) == (0, 0, None)
    assert kpis.agent_figures(kpis.Period.last(7, label=support.pk)) == []


def test_each_agent_has_assignments_answers_and_resolutions(team):
    rows = {row.name: row for row in kpis.agent_figures(kpis.Period.last(7))}

    assert set(rows) == {"Ana", "Beto"}
    ana, beto = rows["Ana"], rows["Beto"]
    assert (ana.assignments, ana.answered, ana.resolved) == (1, 1, 1)
    assert (beto.assignments, beto.answered, beto.resolved) == (2, 1, 0)
    assert ana.first_response_median_s is not None and ana.resolution_median_s is not None
    assert beto.first_response_p90_s is not None
    assert (beto.resolution_median_s, beto.resolution_p90_s) == (None, None)


def test_the_label_narrows_the_agents_table(team):
    rows = kpis.agent_figures(kpis.Period.last(7, channel="web", label=team["sales"].pk))

    assert [(row.name, row.assignments, row.resolved) for row in rows] == [("Ana", 1, 1)]


@pytest.mark.parametrize(
    ("samples", "median", "p90"),
    [([], None, None), ([7.0], 7.0, 7.0), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5.5, 9.0), ([3, 1, 2], 2.0, 3.0)],
)
def test_median_and_nearest_rank_p90(samples, median, p90):
    assert (kpis.median(samples), kpis.percentile(samples, 90)) == (median, p90)


def test_the_page_offers_the_labels_and_shows_the_agents_table(team):
    supervisor = get_user_model().objects.create_user("sara", is_staff=True, is_superuser=True)

    page = signed_in(supervisor).get(PAGE, {"label": team["sales"].pk}, HTTP_ACCEPT_LANGUAGE="en")

    html = page.content.decode()
    assert page.status_code == 200
    assert f'<option value="{team["sales"].pk}" selected>Ventas</option>' in html
    assert "Soporte</option>" in html
    assert "Label: Ventas" in html
    assert 'id="agent-table"' in html and '<th scope="row">Ana</th>' in html
    assert '<th scope="row">Beto</th>' not in html
    assert f"label={team['sales'].pk}" in html  # the export links keep the filter
    assert "count every label" in html


def test_an_empty_period_renders_dashes_and_no_agents(db):
    supervisor = get_user_model().objects.create_user("sara", is_staff=True, is_superuser=True)

    page = signed_in(supervisor).get(PAGE, {"days": 1}, HTTP_ACCEPT_LANGUAGE="en")

    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="agent-table-empty"' in html and 'id="agent-table"' not in html
    assert "Sessions started" in html and "—" in html


def test_an_unknown_label_falls_back_to_every_label_with_a_message(team):
    supervisor = get_user_model().objects.create_user("sara", is_staff=True, is_superuser=True)

    page = signed_in(supervisor).get(PAGE, {"label": "999999"}, HTTP_ACCEPT_LANGUAGE="en")

    assert page.status_code == 200
    assert 'role="alert"' in page.content.decode()
    assert '<th scope="row">Beto</th>' in page.content.decode()


def test_the_exports_follow_the_label(team):
    client = signed_in(get_user_model().objects.create_user("sara", is_staff=True, is_superuser=True))
    sales = team["sales"].pk

    conversations = rows_of(client.get(CONVERSATIONS_CSV, {"label": sales}))
    leads = rows_of(client.get(LEADS_CSV, {"label": sales}))
    every_conversation = rows_of(client.get(CONVERSATIONS_CSV))
    every_lead = rows_of(client.get(LEADS_CSV))

    assert [row[0] for row in conversations[1:]] == [str(team["lucia"].pk)]
    assert [row[0] for row in leads[1:]] == [str(team["card"].pk)]
    assert (len(every_conversation) - 1, len(every_lead) - 1) == (4, 2)
    assert client.get(CONVERSATIONS_CSV, {"label": "nope"}).status_code == 400
