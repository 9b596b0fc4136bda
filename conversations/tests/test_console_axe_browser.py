"""axe-core (a vendored test asset, talia/testing/assets/) on the console's pages in a real browser: the
queue, a conversation with its contact sidebar and notes, the monitor and the dashboard, as a supervisor
(who sees every page and every control). No serious or critical violation may remain. On the way, the
help menu's API reference link, and a refused edit shown in the agent's language (the API's own message
is English)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from conversations import inbox, state
from conversations.models import Label, Team
from talia.testing.axe import serious_violations

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a-long-supervisor-password"


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 900}}


def test_the_console_pages_have_no_serious_accessibility_violations(live_system: LiveServer, page: Any) -> None:
    sara = get_user_model().objects.create_user("sara", password=PASSWORD, first_name="Sara", is_staff=True)
    sara.groups.add(Group.objects.get_or_create(name="agents")[0])
    Label.objects.create(name="Presupuesto", colour="#2e7d32")
    Team.objects.create(name="Soporte", auto_assign=False)  # a queue the waiting conversation may move to
    mine = inbox.receive("web", "axe-browser-0001", "Hola, quiero un presupuesto", assistant_turn=False).conversation
    state.request_handoff(mine, requested_by="contact")
    state.claim_conversation(mine, sara)
    waiting = inbox.receive("web", "axe-browser-0002", "¿Abren el sábado?", assistant_turn=False).conversation
    state.request_handoff(waiting, requested_by="contact")
    inbox.receive("web", "axe-browser-0003", "¿Cuánto cuesta una limpieza?", assistant_turn=False)

    page.goto(f"{live_system.url}/console/")
    page.get_by_label("Usuario").fill("sara")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.locator("#console")).to_be_visible(timeout=20_000)
    found = {"queue": serious_violations(page)}
    # The help menu leads to the API reference.
    page.locator(".help-menu summary").click()
    expect(page.locator(".help-menu a")).to_have_attribute("href", "/api/docs/")

    page.goto(f"{live_system.url}/console/conversations/{mine.pk}/")
    expect(page.locator("#contact-email")).to_be_visible(timeout=20_000)
    # The API answers in English; the sidebar shows the agent the `localized` copy, in Spanish.
    page.locator("#contact-email").fill("lucia@")
    page.locator("#contact-save").click()
    expect(page.locator("#contact-email-error")).to_have_text("Introduce un correo electrónico válido.")
    found["conversation"] = serious_violations(page)  # with the field's error showing

    page.goto(f"{live_system.url}/console/conversations/{waiting.pk}/")
    expect(page.locator("#move-queue-form")).to_be_visible(timeout=20_000)
    found["waiting"] = serious_violations(page)

    page.goto(f"{live_system.url}/console/monitor/")
    expect(page.locator("#console")).to_be_visible(timeout=20_000)
    found["monitor"] = serious_violations(page)

    page.goto(f"{live_system.url}/console/dashboard/")
    expect(page.locator("h1")).to_be_visible(timeout=20_000)
    found["dashboard"] = serious_violations(page)

    assert found == {"queue": [], "conversation": [], "waiting": [], "monitor": [], "dashboard": []}
