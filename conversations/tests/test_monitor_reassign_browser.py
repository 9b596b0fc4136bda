"""Supervisors in real browsers (issue #17): two agents in two teams have their consoles open; the monitor
shows each team's queue and the agents' states, and the supervisor reassigns from it — a conversation Ana
handles goes to Bruno (who sees it arrive live) and a waiting one goes to Ana."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from conversations import inbox, state
from conversations.models import AgentAssignment, Conversation, ConversationStatus, Team

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


def queued(session: str, reason: str) -> Conversation:
    conversation = inbox.receive("web", session, "Hola, quiero hablar con alguien", assistant_turn=False).conversation
    state.request_handoff(conversation, requested_by="contact", reason=reason)
    conversation.refresh_from_db()
    return conversation


def test_a_supervisor_reassigns_from_the_monitor(live_system: LiveServer, page: Any, browser: Any) -> None:
    get_user_model().objects.create_user("berta", password=PASSWORD, first_name="Berta", is_staff=True)
    ana, bruno = make_agent("ana", "Ana"), make_agent("bruno", "Bruno")
    sales = Team.objects.create(name="Ventas", keywords="precio", auto_assign=False, capacity=3)
    support = Team.objects.create(name="Soporte", keywords="factura", auto_assign=False, capacity=4)
    sales.members.add(ana)
    support.members.add(bruno)
    with_ana = queued("browser-reassign-01", "pregunta el precio")
    state.claim_conversation(with_ana, ana)
    waiting = queued("browser-reassign-02", "una factura")
    assert (with_ana.team, waiting.team) == (sales, support)

    new_page = lambda: browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 800}).new_page()  # noqa: E731
    ana_page, bruno_page = new_page(), new_page()
    sign_in(page, f"{live_system.url}/console/monitor/", "berta")
    monitor = page
    support_queue = monitor.locator(f"#team-queues tr[data-team-queue='{support.pk}']")
    expect(support_queue.locator(".waiting")).to_have_text("1")
    expect(monitor.locator(f"#team-queues tr[data-team-queue='{sales.pk}'] .waiting")).to_have_text("0")
    expect(monitor.locator(f"#agent-states tr[data-agent-id='{ana.pk}'] .state")).to_have_attribute(
        "data-state", "offline"
    )

    # Both agents open their consoles: the monitor sees them come online, live.
    sign_in(ana_page, f"{live_system.url}/console/", "ana")
    sign_in(bruno_page, f"{live_system.url}/console/", "bruno")
    for agent in (ana, bruno):
        expect(monitor.locator(f"#agent-states tr[data-agent-id='{agent.pk}'] .state")).to_have_attribute(
            "data-state", "online", timeout=20_000
        )
    expect(monitor.locator(f"#agent-states tr[data-agent-id='{ana.pk}'] .load")).to_have_text("1 / 3")

    # Ana's conversation goes to Bruno; his console gets it without a reload, and so does the monitor.
    bruno_page.evaluate("window.__same_page = true")
    monitor.evaluate("window.__same_page = true")
    monitor.locator(f"li[data-conversation-id='{with_ana.pk}'] button.reassign").click()
    monitor.locator("#reassign-to").select_option(label="Bruno")
    monitor.locator("#reassign-note").fill("Bruno lleva este cliente")
    monitor.locator("#reassign-button").click()
    expect(monitor.locator(f"li[data-conversation-id='{with_ana.pk}'] .agent")).to_have_text("Bruno", timeout=20_000)
    # The loads are pushed (monitor.figures): Ana's drops, Bruno's rises.
    expect(monitor.locator(f"#agent-states tr[data-agent-id='{ana.pk}'] .load")).to_have_text("0 / 3", timeout=20_000)
    expect(monitor.locator(f"#agent-states tr[data-agent-id='{bruno.pk}'] .load")).to_have_text("1 / 4")
    # Bruno's console says so at once, linking to it.
    expect(bruno_page.locator("#queue-alert")).to_be_visible(timeout=20_000)
    expect(bruno_page.locator("#queue-alert-link")).to_have_attribute("href", f"/console/conversations/{with_ana.pk}/")
    assert bruno_page.evaluate("window.__same_page") is True
    moved = Conversation.objects.get(pk=with_ana.pk)
    assert (moved.status, moved.assigned_agent_id) == (ConversationStatus.AGENT, bruno.pk)

    # The waiting conversation of Soporte goes to Ana (not a member of Soporte): its queue empties.
    monitor.locator(f"li[data-conversation-id='{waiting.pk}'] button.reassign").click()
    monitor.locator("#reassign-to").select_option(label="Ana")
    monitor.locator("#reassign-button").click()
    expect(monitor.locator(f"li[data-conversation-id='{waiting.pk}'] .agent")).to_have_text("Ana", timeout=20_000)
    expect(support_queue.locator(".waiting")).to_have_text("0", timeout=20_000)
    expect(monitor.locator(f"#agent-states tr[data-agent-id='{ana.pk}'] .load")).to_have_text("1 / 3")
    expect(monitor.locator(f"#agent-states tr[data-agent-id='{bruno.pk}'] .load")).to_have_text("1 / 4")
    assert monitor.evaluate("window.__same_page") is True  # all of it live: the monitor never reloaded
    claimed = Conversation.objects.get(pk=waiting.pk)
    assert (claimed.status, claimed.assigned_agent_id) == (ConversationStatus.AGENT, ana.pk)
    assert AgentAssignment.objects.filter(conversation=waiting, agent=ana, released_at__isnull=True).count() == 1
