"""Every console action an agent and a supervisor reach by normal use, in a real browser: none answers
with an error page (no 4xx or 5xx on a page or an API call the console makes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from conversations import inbox, state
from conversations.models import Conversation, ConversationStatus, Label
from talia.testing.plugin import wait_for

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a-long-agent-password"


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()


def failures_of(page: Any) -> list[str]:
    """Every response of the page's own origin with an error status, as "STATUS METHOD URL"."""
    failed: list[str] = []
    page.on(
        "response",
        lambda r: (
            failed.append(f"{r.status} {r.request.method} {r.url}")
            if r.status >= 400 and "/favicon.ico" not in r.url
            else None
        ),
    )
    return failed


def queued(session: str, text: str) -> Conversation:
    conversation = inbox.receive("web", session, text).conversation
    state.request_handoff(conversation, requested_by="contact")
    return conversation


def test_an_agent_and_a_supervisor_walk_every_console_action_without_an_error_page(
    live_system: LiveServer, page: Any, browser: Any
) -> None:
    users = get_user_model().objects
    ana = users.create_user("ana", password=PASSWORD, first_name="Ana")
    ana.groups.add(Group.objects.get_or_create(name="agents")[0])
    users.create_user("berta", password=PASSWORD, first_name="Berta", is_staff=True)
    Label.objects.create(name="VIP", colour="#b91c1c")
    first = queued("walk-session-0001", "Hola, quiero cambiar mi cita del martes")
    second = queued("walk-session-0002", "¿Me puede atender un asesor?")
    bruno = users.create_user("bruno", first_name="Bruno")
    bruno.groups.add(Group.objects.get_or_create(name="agents")[0])
    taken = state.claim_conversation(queued("walk-session-0003", "Hola, una duda"), bruno)
    agent = page
    failed = failures_of(agent)

    # The queue, a conversation, claim, a reply, a note.
    sign_in(agent, f"{live_system.url}/console/", "ana")
    agent.locator(f"a.contact[href*='{first.pk}']").click()
    agent.locator("#claim-button").click()
    composer = agent.locator("#composer-text")
    expect(composer).to_be_visible(timeout=20_000)
    composer.fill("Hola, soy Ana. ¿A qué hora te viene bien?")
    composer.press("Enter")
    expect(agent.locator("#messages")).to_contain_text("¿A qué hora te viene bien?", timeout=20_000)
    agent.locator("#note-text").fill("Prefiere las tardes")
    agent.get_by_role("button", name="Añadir nota").click()
    expect(agent.locator("#notes")).to_contain_text("Prefiere las tardes", timeout=20_000)

    agent.get_by_label("VIP").check()
    assert wait_for(lambda: first.labels.filter(name="VIP").exists())

    # Hand back: back on the queue, told so; then take it over again from the assistant.
    agent.locator("#hand-back-button").click()
    expect(agent.locator(".flash")).to_contain_text("Devuelta al asistente", timeout=20_000)
    assert agent.url == f"{live_system.url}/console/"
    agent.locator(f"#assistant-list a.contact[href*='{first.pk}']").click()
    agent.get_by_role("button", name="Tomar el control").click()
    expect(agent.locator("#composer-text")).to_be_visible(timeout=20_000)
    agent.locator("#hand-back-button").click()
    expect(agent.locator(".flash")).to_contain_text("Devuelta al asistente", timeout=20_000)
    # Someone else's conversation, from an old link: the queue, with a word on why.
    agent.goto(f"{live_system.url}/console/conversations/{taken.pk}/")
    expect(agent.locator(".flash")).to_contain_text("ya no está en tu cola")

    # The second one: claim, close after the inline confirmation, read the closed page.
    agent.locator(f"a.contact[href*='{second.pk}']").click()
    agent.locator("#claim-button").click()
    agent.locator("#close-button").click()
    with agent.expect_navigation():  # the page reloads into its closed state
        agent.locator("#close-yes").click()
    expect(agent.locator("#conversation-status")).to_contain_text("Cerrada", timeout=20_000)
    agent.goto(f"{live_system.url}/console/meetings/")
    agent.goto(f"{live_system.url}/console/")
    agent.get_by_role("button", name="Cerrar sesión").click()

    # A supervisor: queue, monitor, dashboard, exports, both conversations, meetings, the admin.
    supervisor = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 800}).new_page()
    seen = failures_of(supervisor)
    sign_in(supervisor, f"{live_system.url}/console/", "berta")
    for path in (
        "/console/monitor/",
        "/console/dashboard/",
        f"/console/conversations/{first.pk}/",
        f"/console/conversations/{second.pk}/",
        "/console/meetings/",
        "/admin/",
    ):
        supervisor.goto(f"{live_system.url}{path}")
        expect(supervisor.locator("body")).to_be_visible()
    with supervisor.expect_download():
        supervisor.evaluate("location.href = '/console/dashboard/leads.csv'")

    assert failed == [] and seen == [], failed + seen
    assert Conversation.objects.get(pk=first.pk).status == ConversationStatus.BOT
    assert Conversation.objects.get(pk=second.pk).status == ConversationStatus.CLOSED
