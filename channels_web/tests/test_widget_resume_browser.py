"""The widget notices lost pushes and resumes, in a real browser against a real Daphne.

A push is lost at the wire: the widget socket's channel is taken out of its conversation's group in
Redis (as an expired membership or a dropped push would leave it) while a reply is stored, then put
back. No Celery worker runs, so the only replies are the ones this test stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from conversations import inbox, realtime
from conversations.models import Conversation, ConversationStatus, Sender
from talia.testing.plugin import wait_for
from talia.testing.sockets import pushes_lost

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> LiveServer:
    """Daphne answering POSTs at once with 202 (no wait for a reply), so the socket is the only way in."""
    monkeypatch.setenv("TALIA_REPLY_WAIT_S", "0")
    return request.getfixturevalue("daphne_server")


@pytest.fixture
def chatting(server: LiveServer, page: Any) -> Iterator[tuple[Any, Conversation]]:
    """A visitor who said hello and got a reply live: the widget has its socket and the last seq."""
    page.goto(f"{server.url}/")
    page.get_by_role("button", name="Abrir el chat").click()
    page.get_by_role("button", name="Chatear con el asistente").click()
    box = page.get_by_label("Tu mensaje")
    box.fill("Hola")
    box.press("Enter")
    expect(page.locator("talia-widget .m.u.sd")).to_have_count(0)  # the POST answered (202)
    conversation = wait_for(lambda: Conversation.objects.first())
    inbox.send(conversation, "¡Hola! ¿En qué te ayudo?", sender=Sender.ASSISTANT)
    expect(replies(page).first).to_have_text("¡Hola! ¿En qué te ayudo?", timeout=20_000)
    yield page, conversation


def replies(page: Any) -> Any:
    return page.locator("talia-widget .m:not(.u) .tx")


def test_a_gap_in_seq_makes_the_widget_resume(chatting: tuple[Any, Conversation]) -> None:
    page, conversation = chatting
    with pushes_lost(conversation.group_name):
        inbox.send(conversation, "Esta se perdió por el camino", sender=Sender.ASSISTANT)

    inbox.send(conversation, "Y esta llegó", sender=Sender.ASSISTANT)  # seq jumps by two: a gap

    expect(replies(page)).to_have_text(
        ["¡Hola! ¿En qué te ayudo?", "Esta se perdió por el camino", "Y esta llegó"], timeout=20_000
    )


def test_silence_while_a_reply_is_pending_makes_the_widget_resume(chatting: tuple[Any, Conversation]) -> None:
    page, conversation = chatting
    box = page.get_by_label("Tu mensaje")
    with pushes_lost(conversation.group_name):
        box.fill("¿Sigues ahí?")
        box.press("Enter")
        expect(page.locator("talia-widget .m.u.sd")).to_have_count(0)  # 202: stored, no reply yet
        inbox.send(conversation, "Sí, aquí sigo", sender=Sender.ASSISTANT)

    # Nothing more is pushed: only the widget asking after a silence can bring the reply.
    expect(replies(page)).to_have_text(["¡Hola! ¿En qué te ayudo?", "Sí, aquí sigo"], timeout=30_000)


def test_a_late_opened_push_does_not_undo_the_wait_for_a_person(server: LiveServer, page: Any) -> None:
    """The push saying the conversation was opened (status "bot") can arrive after the handoff's HTTP
    answer put the widget in the queue; it must not hide "Stop waiting"."""
    page.goto(f"{server.url}/")
    page.get_by_role("button", name="Abrir el chat").click()
    page.get_by_role("button", name="Hablar con una persona").first.click()
    stop = page.get_by_role("button", name="Dejar de esperar")
    expect(stop).to_be_visible(timeout=20_000)

    conversation = Conversation.objects.get()
    stale = Conversation.objects.get(pk=conversation.pk)
    stale.status = ConversationStatus.BOT  # the snapshot taken when the conversation was created
    with pushes_lost(conversation.group_name):
        reply = inbox.send(conversation, "Un momento, te paso con alguien.", sender=Sender.ASSISTANT)
    # On one group, in this order: the stale snapshot, then a push the test can see arrive.
    contact = realtime.contact_group(conversation.contact_id)
    realtime.publish([contact], realtime.conversation_changed("conversation.opened", stale))
    realtime.publish([contact], realtime.message_new(reply))

    expect(replies(page).last).to_have_text("Un momento, te paso con alguien.", timeout=20_000)
    expect(stop).to_be_visible()


def test_the_widget_offers_whatsapp_when_configured(monkeypatch: pytest.MonkeyPatch, request: Any, page: Any) -> None:
    monkeypatch.setenv("TALIA_WEBCHAT_WHATSAPP_NUMBER", "+34 600 123 456")
    live: LiveServer = request.getfixturevalue("daphne_server")
    page.goto(f"{live.url}/")
    page.get_by_role("button", name="Abrir el chat").click()

    link = page.get_by_role("link", name="Seguir por WhatsApp")
    expect(link).to_be_visible(timeout=20_000)
    expect(link).to_have_attribute("href", "https://wa.me/34600123456")
