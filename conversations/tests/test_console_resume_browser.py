"""The console's conversation page notices lost pushes and resumes, in a real browser.

Pushes are lost at the wire (the page's socket taken out of the conversation's group in Redis while a
message is stored). No Celery worker runs: the only replies are the ones this test stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from conversations import inbox
from conversations.models import Sender
from talia.testing.sockets import pushes_lost, session_cookie

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


def test_the_console_resumes_after_a_gap_and_after_silence(daphne_server: LiveServer, page: Any) -> None:
    supervisor = get_user_model().objects.create_user("berta", is_staff=True)  # may watch any conversation
    name, value = session_cookie(supervisor).split("=", 1)
    page.context.add_cookies([{"name": name, "value": value, "url": daphne_server.url}])
    conversation = inbox.receive("web", "console-resume-0001", "Hola").conversation
    inbox.send(conversation, "¡Hola! ¿En qué te ayudo?", sender=Sender.ASSISTANT)
    page.goto(f"{daphne_server.url}/console/conversations/{conversation.pk}/")
    expect(page.locator("#console[data-watching='true']")).to_have_count(1, timeout=20_000)
    texts = page.locator("#messages li[data-seq] .text")

    # A gap: the next push skips a seq, and the page asks for what it missed.
    with pushes_lost(conversation.group_name):
        inbox.send(conversation, "Esta se perdió", sender=Sender.ASSISTANT)
    inbox.send(conversation, "Esta llegó", sender=Sender.ASSISTANT)
    expect(texts).to_have_text(["Hola", "¡Hola! ¿En qué te ayudo?", "Esta se perdió", "Esta llegó"], timeout=20_000)

    # Silence: the visitor spoke last and the assistant's reply is lost; the page asks after 10 s.
    inbox.receive("web", "console-resume-0001", "¿Tenéis cita mañana?")
    expect(texts.last).to_have_text("¿Tenéis cita mañana?", timeout=20_000)
    with pushes_lost(conversation.group_name):
        inbox.send(conversation, "Sí, a las diez", sender=Sender.ASSISTANT)
    expect(texts.last).to_have_text("Sí, a las diez", timeout=40_000)
