"""Moving a waiting conversation to another team's queue in real browsers: an agent of Ventas moves it to
Soporte from its page; a member of Soporte sees the row arrive live and the supervisor's monitor moves it
between the team queues, without reloading either page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from conversations import events
from conversations.models import Conversation, ConversationStatus, Event, Team
from conversations.tests.console_helpers import queued
from conversations.tests.test_teams_browser import PASSWORD, make_agent, sign_in

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


def test_an_agent_moves_a_waiting_conversation_to_another_teams_queue(
    live_system: LiveServer, page: Any, browser: Any
) -> None:
    get_user_model().objects.create_user("berta", password=PASSWORD, first_name="Berta", is_staff=True)
    ana, bruno = make_agent("ana", "Ana"), make_agent("bruno", "Bruno")
    sales = Team.objects.create(name="Ventas", keywords="precio", auto_assign=False)
    support = Team.objects.create(name="Soporte", keywords="factura", auto_assign=False)
    sales.members.add(ana)
    support.members.add(bruno)
    waiting = queued("browser-move-0001", reason="pregunta el precio")
    assert waiting.team == sales

    new_page = lambda: browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 800}).new_page()  # noqa: E731
    bruno_page, monitor = new_page(), new_page()
    sign_in(bruno_page, f"{live_system.url}/console/", "bruno")
    sign_in(monitor, f"{live_system.url}/console/monitor/", "berta")
    for other in (bruno_page, monitor):
        other.evaluate("window.__same_page = true")
    expect(bruno_page.locator(f"#queue-list li[data-conversation-id='{waiting.pk}']")).to_have_count(0)
    sales_queue = monitor.locator(f"#team-queues tr[data-team-queue='{sales.pk}'] .waiting")
    support_queue = monitor.locator(f"#team-queues tr[data-team-queue='{support.pk}'] .waiting")
    expect(sales_queue).to_have_text("1")

    sign_in(page, f"{live_system.url}/console/conversations/{waiting.pk}/", "ana")
    page.locator("#move-queue-to").select_option(label="Soporte")
    page.locator("#move-queue-note").fill("Es una factura, no una venta")
    page.locator("#move-queue-button").click()

    expect(page).to_have_url(f"{live_system.url}/console/")
    expect(page.locator(f"#queue-list li[data-conversation-id='{waiting.pk}']")).to_have_count(0)
    row = bruno_page.locator(f"#queue-list li[data-conversation-id='{waiting.pk}']")
    expect(row).to_be_visible(timeout=20_000)
    expect(row.locator(".team")).to_have_text("Soporte")
    expect(monitor.locator(f"li[data-conversation-id='{waiting.pk}'] .team")).to_have_text("Soporte", timeout=20_000)
    expect(support_queue).to_have_text("1", timeout=20_000)
    expect(sales_queue).to_have_text("0")
    assert bruno_page.evaluate("window.__same_page") is True and monitor.evaluate("window.__same_page") is True
    moved = Conversation.objects.get(pk=waiting.pk)
    assert (moved.status, moved.team_id) == (ConversationStatus.QUEUED, support.pk)
    event = Event.objects.get(conversation=waiting, name=events.TRANSFERRED.name)
    assert (event.payload["from_team_id"], event.payload["to_team_id"]) == (sales.pk, support.pk)
