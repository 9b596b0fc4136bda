"""Leaving the page: the widget's `pagehide` beacon records a session closure, in a real browser against a
real Daphne, and the conversation goes on (no worker runs: the only replies are the ones stored here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from channels_web import events as web_events
from conversations import inbox
from conversations.models import Conversation, ConversationStatus, EndChatRequest, Event, Sender
from talia.testing.plugin import wait_for

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> LiveServer:
    monkeypatch.setenv("TALIA_REPLY_WAIT_S", "0")
    return request.getfixturevalue("daphne_server")


def test_leaving_the_page_records_a_closure_and_keeps_the_chat(server: LiveServer, page: Any) -> None:
    page.goto(f"{server.url}/")
    page.get_by_role("button", name="Abrir el chat").click()
    page.get_by_role("button", name="Chatear con el asistente").click()
    box = page.get_by_label("Tu mensaje")
    box.fill("Hola")
    box.press("Enter")
    conversation = wait_for(lambda: Conversation.objects.first())
    inbox.send(conversation, "¡Hola! ¿En qué te ayudo?", sender=Sender.ASSISTANT)
    expect(page.locator("talia-widget .m:not(.u) .tx").first).to_have_text("¡Hola! ¿En qué te ayudo?", timeout=20_000)

    page.goto("about:blank")  # pagehide: the widget sends its beacon

    closed = wait_for(lambda: Event.objects.filter(name=web_events.SESSION_CLOSED.name).first())
    assert closed.payload["reason"] == "page_left"
    assert closed.conversation_id == conversation.pk
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.BOT
    assert not EndChatRequest.objects.exists()
