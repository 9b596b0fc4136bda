"""Teams in real browsers: an agent transfers a conversation to another team's queue with a note, and a
member of that team sees it arrive live; the presence select stores the agent's state; an agent accepts an
auto-assignment offer from its prompt."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from conversations import inbox, state
from conversations.console import presence
from conversations.models import AssignmentOffer, Conversation, ConversationStatus, InternalNote, Team
from talia.testing.axe import serious_violations
from talia.testing.plugin import wait_for

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a-long-agent-password"


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


def make_agent(username: str, first_name: str) -> Any:
    user = get_user_model().objects.create_user(username, password=PASSWORD, first_name=first_name)
    user.groups.add(Group.objects.get_or_create(name="agents")[0])
    return user


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.locator("#console")).to_be_visible()


def test_an_agent_transfers_to_a_team_whose_member_sees_it_live(live_system: LiveServer, page: Any, browser: Any):
    ana, bruno = make_agent("ana", "Ana"), make_agent("bruno", "Bruno")
    billing = Team.objects.create(name="Facturación", auto_assign=False)
    billing.members.add(bruno)
    conversation = inbox.receive("web", "browser-transfer-01", "Tengo una duda con mi factura").conversation
    state.request_handoff(conversation, requested_by="contact", reason="quiere una persona")
    state.claim_conversation(conversation, ana)

    other = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 800}).new_page()
    sign_in(other, f"{live_system.url}/console/", "bruno")
    other.evaluate("window.__same_page = true")
    sign_in(page, f"{live_system.url}/console/conversations/{conversation.pk}/", "ana")

    page.locator("#transfer-to").select_option(label="Facturación")
    page.locator("#transfer-note").fill("Es una duda de factura, no de tratamiento")
    page.locator("#transfer-button").click()

    expect(page).to_have_url(f"{live_system.url}/console/")
    row = other.locator(f"#queue-list li[data-conversation-id='{conversation.pk}']")
    expect(row).to_be_visible(timeout=20_000)
    expect(row.locator(".team")).to_have_text("Facturación")
    assert other.evaluate("window.__same_page") is True  # a live row, not a reloaded page
    fresh = Conversation.objects.get(pk=conversation.pk)
    assert (fresh.status, fresh.team_id) == (ConversationStatus.QUEUED, billing.pk)
    assert InternalNote.objects.get(conversation=conversation).text == "Es una duda de factura, no de tratamiento"

    # Ana sets herself away from the queue page's select.
    page.locator("#presence-state").select_option("away")  # labelled "Mi estado" once translated
    wait_for(lambda: presence.chosen_state(ana.pk) == "away")
    presence.set_state(ana.pk, "online")


def test_an_agent_accepts_an_auto_assignment_offer_from_the_prompt(live_system: LiveServer, page: Any):
    ana = make_agent("ana", "Ana")
    support = Team.objects.create(name="Soporte", keywords="avería")
    support.members.add(ana)
    sign_in(page, f"{live_system.url}/console/", "ana")
    # Her state is right from the first paint, before the socket says she is connected.
    expect(page.locator("#presence-state")).to_have_value("online")
    wait_for(lambda: ana.pk in presence.available_agent_ids())

    conversation = inbox.receive("web", "browser-offer-0001", "Se me ha roto el aparato").conversation
    state.request_handoff(conversation, requested_by="contact", reason="una avería")

    prompt = page.locator("#offer-prompt")
    expect(prompt).to_be_visible(timeout=20_000)
    expect(prompt.locator("#offer-countdown")).to_contain_text("s")
    assert serious_violations(page, "#offer-prompt") == []
    offer = AssignmentOffer.objects.get(conversation=conversation, status=AssignmentOffer.Status.PENDING)
    assert offer.agent_id == ana.pk
    prompt.locator("#offer-accept").click()  # "Aceptar" once translated

    expect(page).to_have_url(f"{live_system.url}/console/conversations/{conversation.pk}/")
    fresh = Conversation.objects.get(pk=conversation.pk)
    assert (fresh.status, fresh.assigned_agent_id) == (ConversationStatus.AGENT, ana.pk)
    offer.refresh_from_db()
    assert offer.status == AssignmentOffer.Status.ACCEPTED
