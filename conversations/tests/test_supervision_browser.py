"""The supervisors' monitor in a real browser, next to an agent's console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from conversations import inbox, state

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a-long-staff-password"


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()


def test_the_monitor_follows_conversations_live_and_a_whisper_reaches_the_agent(
    live_system: LiveServer, page: Any, browser: Any
) -> None:
    users = get_user_model().objects
    users.create_user("berta", password=PASSWORD, first_name="Berta", is_staff=True)
    ana = users.create_user("ana", password=PASSWORD, first_name="Ana")
    ana.groups.add(Group.objects.get_or_create(name="agents")[0])
    monitor = page
    agent = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 800}).new_page()

    sign_in(monitor, f"{live_system.url}/console/monitor/", "berta")
    expect(monitor.get_by_text("No hay conversaciones abiertas.")).to_be_visible()
    expect(monitor.locator("#figure-online")).to_have_text("0")
    sign_in(agent, f"{live_system.url}/console/", "ana")
    expect(monitor.locator("#agents-list")).to_contain_text("Ana", timeout=20_000)
    expect(monitor.locator("#figure-online")).to_have_text("1")

    # A visitor writes, then asks for a person; Ana takes the conversation. The monitor follows each step.
    conversation = inbox.receive("web", "browser-monitor-0001", "¿Tenéis cita el sábado?").conversation
    row = monitor.locator(f"li[data-conversation-id='{conversation.pk}']")
    expect(row).to_contain_text("¿Tenéis cita el sábado?", timeout=20_000)
    expect(row.locator(".status")).to_have_text("Con el asistente")
    state.request_handoff(conversation, requested_by="contact")
    expect(row.locator(".status")).to_have_text("Esperando a un agente", timeout=20_000)
    expect(monitor.locator("#figure-queued")).to_have_text("1")
    state.claim_conversation(conversation, ana)
    expect(row.locator(".agent")).to_have_text("Ana", timeout=20_000)
    expect(monitor.locator("#figure-queued")).to_have_text("0")
    expect(monitor.locator("#figure-agent")).to_have_text("1")

    # From the conversation, Berta whispers to Ana, who is on her queue page.
    row.locator("a.contact").click()
    monitor.get_by_label("Susurrar a Ana").fill("Ofrécele el sábado a las 10")
    monitor.get_by_role("button", name="Susurro", exact=True).click()
    expect(monitor.locator("#notes")).to_contain_text("Ofrécele el sábado a las 10")
    whisper = agent.locator("#whisper-alert")
    expect(whisper).to_contain_text("Susurro de Berta", timeout=20_000)
    expect(whisper).to_contain_text("Ofrécele el sábado a las 10")
