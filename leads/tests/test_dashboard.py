"""The supervisors' dashboard: who may see it, the move API, the CSV exports, escaping and the board script."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from conversations import inbox, state
from conversations.models import Contact, HandoffRequest, Sender
from conversations.tests.console_helpers import signed_in
from leads import charts, dashboard, pipeline
from leads.models import LeadCard, LeadMovement

pytestmark = pytest.mark.urls("leads.tests.dashboard_test_urls")

PAGE = "/console/dashboard/"
LEADS_CSV = "/console/dashboard/leads.csv"
CONVERSATIONS_CSV = "/console/dashboard/conversations.csv"
SCRIPT = Path(settings.BASE_DIR) / "static" / "leads" / "dashboard.js"


def make_user(username: str, *, staff: bool) -> Any:
    user = get_user_model().objects.create_user(username=username, is_staff=staff)  # no password: no hashing
    user.groups.add(Group.objects.get_or_create(name="agents")[0])
    return user


@pytest.fixture
def supervisor(db: None) -> Any:
    return make_user("sara", staff=True)


@pytest.fixture
def agent(db: None) -> Any:
    return make_user("ana", staff=False)


@pytest.fixture
def card(db: None) -> LeadCard:
    """Lucía's lead, captured by the assistant from her web chat."""
    received = inbox.receive("web", "session-lucia-0001", "Hola, ¿tienen planes para empresas?")
    Contact.objects.filter(pk=received.contact.pk).update(full_name="Lucía Pérez", email="lucia@example.com")
    received.contact.refresh_from_db()
    card, _ = pipeline.card_for(received.contact, received.conversation, "assistant")
    return card


def move(client: Client, card_id: int, body: dict[str, Any]) -> Any:
    return client.post(f"/console/api/leads/{card_id}/move", data=json.dumps(body), content_type="application/json")


def rows_of(response: Any) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


# --- Who may see it ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [PAGE, LEADS_CSV, CONVERSATIONS_CSV])
def test_anonymous_visitors_are_sent_to_sign_in(db, url):
    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", [PAGE, LEADS_CSV, CONVERSATIONS_CSV])
def test_agents_who_are_not_supervisors_are_refused(agent, url):
    assert signed_in(agent).get(url).status_code == 403


@pytest.mark.parametrize("url", [PAGE, LEADS_CSV, CONVERSATIONS_CSV])
def test_supervisors_see_the_page_and_the_exports(supervisor, card, url):
    response = signed_in(supervisor).get(url)

    assert response.status_code == 200


def test_the_page_shows_figures_charts_and_the_board(supervisor, card):
    response = signed_in(supervisor).get(PAGE, {"days": "7", "channel": "web"})

    page = response.content.decode()
    assert response.context["days"] == 7
    assert response.context["channel"] == "web"
    assert page.count('<svg class="chart"') == 4
    assert 'role="img"' in page
    assert [column.stage for column in response.context["columns"]] == pipeline.stages()
    assert [c.pk for c in response.context["columns"][0].cards] == [card.pk]
    assert f'data-move-url="/console/api/leads/{card.pk}/move"' in page
    assert "Lucía Pérez" in page


@pytest.mark.parametrize("query", [{"days": "0"}, {"days": "91"}, {"days": "many"}, {"channel": "fax"}])
def test_a_bad_range_falls_back_to_the_default_with_a_message(supervisor, query):
    response = signed_in(supervisor).get(PAGE, query)

    assert response.status_code == 200
    assert response.context["days"] == 14
    assert response.context["channel"] == ""
    assert response.context["range_errors"]
    assert 'role="alert"' in response.content.decode()


@pytest.mark.parametrize("url", [LEADS_CSV, CONVERSATIONS_CSV])
def test_an_export_with_a_bad_range_is_refused(supervisor, url):
    assert signed_in(supervisor).get(url, {"days": "365"}).status_code == 400


def test_a_column_shows_at_most_a_hundred_cards_and_says_how_many_more(supervisor):
    contacts = Contact.objects.bulk_create(Contact(full_name=f"Lead {n}") for n in range(102))
    LeadCard.objects.bulk_create(LeadCard(contact=contact, channel="web", stage="new") for contact in contacts)

    response = signed_in(supervisor).get(PAGE)

    column = response.context["columns"][0]
    assert (len(column.cards), column.total, column.more) == (100, 102, 2)
    assert response.content.decode().count('class="card"') == 100


def test_text_from_contacts_is_escaped_on_the_page(supervisor, card):
    Contact.objects.filter(pk=card.contact_id).update(full_name='<script>alert("x")</script>')

    page = signed_in(supervisor).get(PAGE).content.decode()

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


# --- Moving a card ----------------------------------------------------------------------------------------


def test_moving_a_card_records_who_moved_it(supervisor, card):
    response = move(signed_in(supervisor), card.pk, {"stage": "qualified", "reason": "Asked for a quote"})

    assert response.status_code == 200
    assert response.json()["card"]["stage"] == "qualified"
    assert response.json()["moved"] is True
    movement = LeadMovement.objects.filter(card=card).latest("created")
    assert (movement.from_stage, movement.to_stage) == ("new", "qualified")
    assert (movement.moved_by, movement.user, movement.reason) == ("agent", supervisor, "Asked for a quote")
    card.refresh_from_db()
    assert card.stage == "qualified"


def test_moving_a_card_where_it_already_is_changes_nothing(supervisor, card):
    response = move(signed_in(supervisor), card.pk, {"stage": "new"})

    assert response.status_code == 200
    assert response.json()["moved"] is False
    assert LeadMovement.objects.filter(card=card).count() == 1


def test_an_unknown_stage_is_a_field_error(supervisor, card):
    response = move(signed_in(supervisor), card.pk, {"stage": "maybe"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "stage" in error["fields"]
    assert LeadCard.objects.get(pk=card.pk).stage == "new"


def test_a_missing_stage_is_a_field_error(supervisor, card):
    response = move(signed_in(supervisor), card.pk, {})

    assert response.status_code == 400
    assert "stage" in response.json()["error"]["fields"]


def test_an_unknown_card_is_not_found(supervisor):
    response = move(signed_in(supervisor), 999999, {"stage": "won"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("who", ["anonymous", "agent"])
def test_only_supervisors_may_move_cards(agent, card, who):
    client = Client() if who == "anonymous" else signed_in(agent)

    response = move(client, card.pk, {"stage": "won"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] in {"forbidden", "invalid_token"}
    assert LeadCard.objects.get(pk=card.pk).stage == "new"


def test_moving_needs_the_csrf_token(supervisor, card):
    client = Client(enforce_csrf_checks=True)
    client.force_login(supervisor)

    assert move(client, card.pk, {"stage": "won"}).status_code == 403


# --- CSV exports ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("+34600123456", "+34600123456"),
        ("+14155550123", "+14155550123"),
        ("+1+1", "'+1+1"),
        ("+34600123456+cmd|' /C calc'!A0", "'+34600123456+cmd|' /C calc'!A0"),
        ("+0123456789", "'+0123456789"),
        ("-34600123456", "'-34600123456"),
        ("34600123456", "34600123456"),
    ],
)
def test_only_a_bare_e164_number_escapes_the_formula_guard(value, written):
    assert dashboard.safe_cell(value) == written


def test_the_leads_export_has_its_columns_and_neutralises_formulas(supervisor, card):
    Contact.objects.filter(pk=card.contact_id).update(
        full_name='=HYPERLINK("http://evil.example","click")', company="@SUM(A1)", phone="+34600123456"
    )
    pipeline.update_card(card, summary="-2+3 wants a quote", value=Decimal("1200.50"))

    response = signed_in(supervisor).get(LEADS_CSV)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="leads-')
    header, row = rows_of(response)
    assert header == [
        "id",
        "contact",
        "email",
        "phone",
        "company",
        "channel",
        "stage",
        "value",
        "owner",
        "created",
        "updated",
        "summary",
    ]
    record = dict(zip(header, row, strict=True))
    assert record["id"] == str(card.pk)
    assert record["contact"] == '\'=HYPERLINK("http://evil.example","click")'
    assert record["company"] == "'@SUM(A1)"
    assert record["phone"] == "+34600123456"  # E.164 stays a phone number
    assert record["summary"] == "'-2+3 wants a quote"
    assert (record["email"], record["channel"], record["stage"]) == ("lucia@example.com", "web", "new")
    assert (record["value"], record["owner"]) == ("1200.50", "")


def test_the_conversations_export_has_its_columns_and_follows_the_channel(supervisor, agent, card):
    web = card.source_conversation
    state.request_handoff(web, requested_by=HandoffRequest.RequestedBy.CONTACT)
    state.claim_conversation(web, agent)
    inbox.send(web, "Hola, soy Ana", sender=Sender.AGENT, agent=agent)
    inbox.receive("whatsapp", "+34600000009", "Hola")

    everything = rows_of(signed_in(supervisor).get(CONVERSATIONS_CSV))
    web_only = rows_of(signed_in(supervisor).get(CONVERSATIONS_CSV, {"channel": "web"}))

    header = everything[0]
    assert header == ["id", "channel", "status", "contact", "opened_at", "closed_at", "messages", "handed_off", "agent"]
    assert sorted(row[1] for row in everything[1:]) == ["web", "whatsapp"]
    (row,) = web_only[1:]
    record = dict(zip(header, row, strict=True))
    assert record["id"] == str(web.pk)
    assert (record["status"], record["contact"], record["messages"]) == ("agent", "Lucía Pérez", "2")
    assert (record["handed_off"], record["agent"], record["closed_at"]) == ("yes", "ana", "")


# --- The charts and the board's script --------------------------------------------------------------------


def test_charts_are_described_and_escape_their_labels():
    svg = charts.bar_chart(
        ["<b>1 mar</b>", "2 mar"],
        [3, None],
        chart_id="chart-test",
        title="Leads & <friends>",
        description="Three leads.",
        x_label="Day",
        y_label="Leads",
        whole_numbers=True,
    )

    assert '<title id="chart-test-title">Leads &amp; &lt;friends&gt;</title>' in svg
    assert '<desc id="chart-test-desc">Three leads.</desc>' in svg
    assert "&lt;b&gt;1 mar&lt;/b&gt;" in svg
    assert "<b>" not in svg
    assert svg.count('<rect class="bar"') == 1  # no bar for a day without data


def test_the_board_script_is_valid_and_never_parses_markup():
    source = SCRIPT.read_text()

    assert "innerHTML" not in source
    assert "insertAdjacentHTML" not in source
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    subprocess.run([node, "--check", str(SCRIPT)], check=True, capture_output=True, timeout=30)
