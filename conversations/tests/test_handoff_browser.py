"""Human handoff in two real browsers: a visitor in the widget and an agent in the console."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from conversations.models import Conversation, ConversationStatus, ConversationSummary
from talia.testing.plugin import wait_for

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a-long-agent-password"


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


def test_visitor_asks_for_a_person_agent_claims_they_chat_and_end(
    live_system: LiveServer, page: Any, browser: Any
) -> None:
    agent_user = get_user_model().objects.create_user("ana", password=PASSWORD, first_name="Ana")
    agent_user.groups.add(Group.objects.get_or_create(name="agents")[0])
    visitor = page
    agent = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 800}).new_page()

    # The agent signs in to an empty queue.
    agent.goto(f"{live_system.url}/console/")
    agent.get_by_label("Usuario").fill("ana")
    agent.get_by_label("Contraseña").fill(PASSWORD)
    agent.get_by_role("button", name="Iniciar sesión").click()
    expect(agent.locator("#console")).to_be_visible()
    agent.evaluate("window.__same_page = true")

    # The visitor talks to the assistant, then asks for a person.
    visitor.goto(f"{live_system.url}/")
    visitor.get_by_role("button", name="Abrir el chat").click()
    visitor.get_by_role("button", name="Chatear con el asistente").click()
    box = visitor.get_by_label("Tu mensaje")
    box.fill("Hola, tengo una pregunta sobre implantes")
    box.press("Enter")
    from_team = visitor.locator("talia-widget .m:not(.u) .tx")
    expect(from_team.first).to_contain_text("¡Hola!", timeout=20_000)
    box.fill("Quiero hablar con una persona")
    box.press("Enter")
    expect(from_team.last).to_contain_text("persona", timeout=20_000)

    # The agent, signed in before, sees it arrive live: named, with a preview of the last messages.
    waiting = agent.locator("a.contact[href*='/console/conversations/']").first
    expect(waiting).to_be_visible()
    expect(agent.get_by_text("Quiero hablar con una persona").first).to_be_visible(timeout=20_000)  # the preview
    expect(waiting).to_have_text(re.compile(r"^Visitante [0-9a-f]{6}$"))
    assert agent.evaluate("window.__same_page") is True  # a live row, not a reloaded page
    waiting.click()
    agent.locator("#claim-button").click()

    # Both sides talk live.
    composer = agent.locator("textarea").first
    expect(composer).to_be_visible()
    expect(visitor.get_by_text("Ana se ha unido a la conversación.")).to_be_visible(timeout=20_000)
    composer.fill("Hola, soy Ana. ¿Qué quieres saber de los implantes?")
    composer.press("Enter")
    expect(from_team.last).to_have_text("Hola, soy Ana. ¿Qué quieres saber de los implantes?", timeout=20_000)
    box.fill("¿Cuánto tiempo dura el tratamiento?")
    box.press("Enter")
    expect(agent.get_by_text("¿Cuánto tiempo dura el tratamiento?")).to_be_visible(timeout=20_000)

    # The visitor asks to end; the agent accepts; the summary is stored.
    visitor.get_by_role("button", name="Terminar chat").click()
    visitor.get_by_role("button", name="Sí, terminar").click()
    expect(agent.get_by_text("El visitante quiere terminar el chat.")).to_be_visible(timeout=20_000)
    agent.get_by_role("button", name="Terminar el chat").click()
    expect(visitor.get_by_text("La conversación ha terminado.")).to_be_visible(timeout=20_000)

    conversation = Conversation.objects.get()
    assert conversation.status == ConversationStatus.CLOSED
    summary = wait_for(lambda: ConversationSummary.objects.filter(conversation=conversation).first())
    assert summary.ended_by == "contact"
    assert "implantes" in summary.summary
