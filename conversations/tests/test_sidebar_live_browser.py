"""The contact sidebar in a real browser follows what the assistant captures: the visitor's messages go
through the real worker's turn (offline engine), and the agent's open page shows the new name, consent,
lead stage and meeting without a reload, keeping what the agent is typing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from conversations import inbox
from conversations.models import Contact
from conversations.tests.test_contact_sidebar_browser import record_frames, seen_in

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a-long-agent-password"
SESSION = "sidebar-live-browser-01"


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 900}}


def test_the_sidebar_follows_the_assistant_without_a_reload(live_system: LiveServer, page: Any) -> None:
    ana = get_user_model().objects.create_user("ana", password=PASSWORD, first_name="Ana")
    ana.groups.add(Group.objects.get_or_create(name="agents")[0])
    conversation = inbox.receive("web", SESSION, "Hola, buenas", locale="es").conversation  # the worker answers
    sockets = record_frames(page)

    page.goto(f"{live_system.url}/console/conversations/{conversation.pk}/")
    page.get_by_label("Usuario").fill("ana")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.locator("#contact-sidebar")).to_be_visible()
    assert seen_in(page, sockets, 0, f'"watching", "conversation_id": "{conversation.pk}"')
    page.evaluate("window.__same_page = true")
    expect(page.locator("#contact-consent")).to_have_text("aún no se ha preguntado")
    # The agent starts typing a company of their own: it is kept when the assistant stores another.
    page.locator("#contact-company").fill("Mi apunte")

    inbox.receive("web", SESSION, "Vale. Soy Ana Pérez y trabajo en Acme Ibérica", locale="es")

    expect(page.locator("#contact-full_name")).to_have_value("Ana Pérez", timeout=20_000)
    expect(page.locator(".console-bar h1")).to_have_text("Ana Pérez")
    expect(page.locator("#contact-consent")).to_have_text("dado")
    expect(page.locator("#contact-company")).to_have_value("Mi apunte")
    expect(page.locator("#contact-company-previous")).to_contain_text("Acme Ibérica")
    assert Contact.objects.get(pk=conversation.contact_id).company == "Acme Ibérica"

    inbox.receive("web", SESSION, "Quiero una reunión mañana a las 11", locale="es")

    meeting = page.locator("#contact-meetings li")
    expect(meeting).to_have_count(1, timeout=20_000)
    expect(meeting.locator("button", has_text="Confirmar")).to_be_visible()
    expect(page.locator("#contact-meetings-empty")).to_be_hidden()
    expect(page.locator("#lead-stage")).to_have_value("meeting")
    assert page.evaluate("window.__same_page") is True
