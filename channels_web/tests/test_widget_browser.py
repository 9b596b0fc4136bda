"""The widget in a real browser: the demo page, a chat with the offline engine, a reload."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation, ConversationStatus, Message, Sender

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__pwned = 1">'


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


def test_visitor_chats_reloads_and_sees_the_history(live_system: LiveServer, page: Any) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:  # an alert() would mean injected markup ran
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(f"{live_system.url}/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    page.get_by_role("button", name="Abrir el chat").click()
    page.get_by_role("button", name="Chatear con el asistente").click()
    box = page.get_by_label("Tu mensaje")
    box.fill("Hola")
    box.press("Enter")

    replies = page.locator("talia-widget .m:not(.u) .tx")
    notice = page.locator("talia-widget .bar").filter(has_text="Guardamos esta conversación")
    expect(replies.first).to_contain_text("¡Hola! Soy el asistente virtual de TalIA.", timeout=20_000)
    expect(notice).to_be_visible()
    box.fill("Sí, de acuerdo")
    box.press("Enter")
    expect(replies.nth(1)).to_contain_text("nombre completo", timeout=20_000)
    # One consent: given in the chat, the notice goes (pushed over the socket), and stays gone.
    expect(notice).to_be_hidden(timeout=20_000)
    box.fill(XSS)
    box.press("Enter")
    mine = page.locator("talia-widget .m.u .tx")
    expect(mine.last).to_have_text(XSS)
    expect(replies.nth(2)).to_be_visible(timeout=20_000)

    page.reload()
    page.get_by_role("button", name="Abrir el chat").click()

    expect(mine).to_have_text(["Hola", "Sí, de acuerdo", XSS], timeout=20_000)
    expect(replies).to_have_count(3)
    expect(notice).to_be_hidden()
    assert page.locator("talia-widget img").count() == 0  # the markup stayed text
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    stored = list(Message.objects.order_by("created").values_list("sender", flat=True))
    assert stored == [Sender.CONTACT, Sender.ASSISTANT] * 3


def test_visitor_asks_for_a_person_then_stops_waiting(live_system: LiveServer, page: Any) -> None:
    page.goto(f"{live_system.url}/")
    page.get_by_role("button", name="Abrir el chat").click()

    page.get_by_role("button", name="Hablar con una persona").first.click()
    stop = page.get_by_role("button", name="Dejar de esperar")
    expect(stop).to_be_visible(timeout=20_000)
    stop.click()

    expect(page.get_by_text("Vuelves a hablar con el asistente.")).to_be_visible(timeout=20_000)
    expect(stop).to_be_hidden()
    assert Conversation.objects.get().status == ConversationStatus.BOT


def test_a_no_in_the_notice_is_respected_in_the_chat(live_system: LiveServer, page: Any) -> None:
    page.goto(f"{live_system.url}/")
    page.get_by_role("button", name="Abrir el chat").click()
    page.get_by_role("button", name="Chatear con el asistente").click()
    notice = page.locator("talia-widget .bar").filter(has_text="Guardamos esta conversación")
    expect(notice).to_be_visible(timeout=20_000)

    notice.get_by_role("button", name="No, gracias").click()
    expect(notice).to_be_hidden()
    box = page.get_by_label("Tu mensaje")
    box.fill("Hola, soy Ana Pérez, mi correo es ana@example.com")
    box.press("Enter")

    replies = page.locator("talia-widget .m:not(.u) .tx")
    expect(replies.first).to_contain_text("¡Hola! Soy el asistente virtual de TalIA.", timeout=20_000)
    assert "¿Estás de acuerdo?" not in replies.first.inner_text()  # not asked again in the chat
    contact = Conversation.objects.select_related("contact").get().contact
    assert (contact.consent_state, contact.full_name, contact.email) == ("declined", "", "")
