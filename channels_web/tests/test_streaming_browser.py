"""A streamed reply in a real browser: the bubble grows while the model writes, then is the stored message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from conversations.models import Message, Sender
from talia.testing.fake_openai import text

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

REPLY = (
    "¡Hola! Abrimos de lunes a viernes de 9 a 18 h y los sábados de 10 a 14 h. "
    "¿Quieres que te reserve una cita para esta semana?"
)
# The streaming bubble's text, when it shows part of the reply but not all of it yet.
PARTIAL = """reply => {
  const bubble = document.querySelector('talia-widget').shadowRoot.querySelector('.m[aria-hidden="true"] .tx');
  const shown = bubble ? bubble.textContent : '';
  return shown.length > 0 && shown.length < reply.length && reply.startsWith(shown);
}"""


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


def test_the_reply_grows_in_one_bubble_that_becomes_the_stored_message(
    model_engine: Any, live_system: LiveServer, page: Any
) -> None:
    model_engine.script(text(REPLY, pace=0.15))
    page.goto(f"{live_system.url}/")
    page.get_by_role("button", name="Abrir el chat").click()
    page.get_by_role("button", name="Chatear con el asistente").click()
    box = page.get_by_label("Tu mensaje")
    box.fill("¿Qué horario tenéis?")
    box.press("Enter")

    page.wait_for_function(PARTIAL, arg=REPLY, timeout=20_000)
    replies = page.locator("talia-widget .m:not(.u)")
    expect(replies).to_have_count(1)  # the growing bubble is the only one
    expect(replies.locator(".tx")).to_have_text([REPLY], timeout=20_000)
    expect(page.locator('talia-widget .m[aria-hidden="true"]')).to_have_count(0)  # replaced by the stored one
    stored = Message.objects.get(sender=Sender.ASSISTANT)
    assert stored.text == REPLY
    assert model_engine.requests_to("/responses")[0].body["stream"] is True
