"""Files in a real browser: the visitor picks an image in the widget, the agent sees it in the console and
sends a PDF back, which the visitor gets as a link."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from channels_web.tests.test_attachments import PDF, PNG
from conversations.models import Message, Sender

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a-long-agent-password"


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


def loaded(page: Any, image: Any) -> None:
    """Wait until the <img> has really decoded a picture (not a broken-image box)."""
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=20_000)


def test_visitor_sends_an_image_and_the_agent_answers_with_a_pdf(
    live_system: LiveServer, page: Any, browser: Any
) -> None:
    user = get_user_model().objects.create_user("ana", password=PASSWORD, first_name="Ana")
    user.groups.add(Group.objects.get_or_create(name="agents")[0])
    visitor = page
    agent = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 800}).new_page()

    visitor.goto(f"{live_system.url}/")
    visitor.get_by_role("button", name="Abrir el chat").click()
    visitor.get_by_role("button", name="Hablar con una persona").first.click()
    expect(visitor.get_by_role("button", name="Dejar de esperar")).to_be_visible(timeout=20_000)
    clip = visitor.get_by_role("button", name="Adjuntar una imagen o un PDF")
    expect(clip).to_be_visible()
    visitor.locator("talia-widget input[type=file]").set_input_files(
        {"name": "radiografia.png", "mimeType": "image/png", "buffer": PNG}
    )
    mine = visitor.locator("talia-widget .m.u .fs img[alt='radiografia.png']")
    expect(mine).to_be_visible(timeout=20_000)
    loaded(visitor, mine)

    agent.goto(f"{live_system.url}/console/")
    agent.get_by_label("Usuario").fill("ana")
    agent.get_by_label("Contraseña").fill(PASSWORD)
    agent.get_by_role("button", name="Iniciar sesión").click()
    agent.locator("a[href*='/console/conversations/']").first.click()
    agent.locator("#claim-button").click()
    # The page reloads as the agent's own; console.js focuses the reply box once its handlers are set.
    expect(agent.locator("#composer-text")).to_be_focused(timeout=20_000)
    thumb = agent.locator(".attachments img.thumb[alt='radiografia.png']")
    expect(thumb).to_be_visible(timeout=20_000)
    loaded(agent, thumb)

    agent.locator("#composer-file").set_input_files({"name": "guia.pdf", "mimeType": "application/pdf", "buffer": PDF})
    link = visitor.locator("talia-widget .m:not(.u) .fs a").filter(has_text="guia.pdf")
    expect(link).to_be_visible(timeout=20_000)
    with visitor.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "guia.pdf"
    with open(download.value.path(), "rb") as saved:
        assert saved.read() == PDF
    agent_files = Message.objects.filter(sender=Sender.AGENT, content_type="media")
    assert [m.metadata["attachments"][0]["name"] for m in agent_files] == ["guia.pdf"]
