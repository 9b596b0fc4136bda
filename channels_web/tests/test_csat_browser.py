"""After the chat, in a real browser: the visitor rates it and emails themselves the transcript."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from conversations.models import ConversationRating, ConversationStatus
from talia.testing.plugin import wait_for

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer
    from talia.testing.fake_smtp import FakeSMTP

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


def test_visitor_ends_the_chat_rates_it_and_gets_the_transcript(
    live_system: LiveServer, page: Any, smtp_server: FakeSMTP
) -> None:
    page.goto(f"{live_system.url}/")
    page.get_by_role("button", name="Abrir el chat").click()
    page.get_by_role("button", name="Chatear con el asistente").click()
    box = page.get_by_label("Tu mensaje")
    box.fill("Hola <b>equipo</b>")
    box.press("Enter")
    expect(page.locator("talia-widget .m:not(.u) .tx").first).to_be_visible(timeout=20_000)

    page.get_by_role("button", name="Terminar chat").click()
    page.get_by_role("button", name="Sí, terminar").click()
    survey = page.get_by_role("group", name="¿Qué tal te hemos atendido?")
    expect(survey).to_be_visible(timeout=20_000)

    four = survey.get_by_role("button", name="4 de 5")
    four.click()
    expect(four).to_have_attribute("aria-pressed", "true")
    expect(survey.get_by_role("status")).to_have_text("¡Gracias por tu valoración!")
    rating = wait_for(lambda: ConversationRating.objects.select_related("conversation").first())
    assert rating.score == 4 and rating.conversation.status == ConversationStatus.CLOSED
    survey.get_by_label("Comentario (opcional)").fill("Rápido y amable")
    survey.get_by_role("button", name="Enviar valoración").click()
    wait_for(lambda: ConversationRating.objects.filter(score=4, comment="Rápido y amable").exists())

    survey.get_by_label("Tu correo").fill("lucia@example.com")
    survey.get_by_role("button", name="Enviarme la conversación por correo").click()
    expect(survey.get_by_role("status")).to_have_text("Te la enviamos por correo en unos minutos.")
    mail = smtp_server.wait_for(lambda m: "lucia@example.com" in m.recipients)
    assert "Hola &lt;b&gt;equipo&lt;/b&gt;" in mail.part("text/html")
    assert ConversationRating.objects.count() == 1
