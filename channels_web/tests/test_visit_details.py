"""The page and browser a visitor writes from: kept on the message, shown to the agents in the sidebar."""

from __future__ import annotations

import json

import pytest

from conversations.models import Message
from conversations.tests.console_helpers import signed_in

SESSION = "visit-details-session-01"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture(autouse=True)
def no_waiting(settings):
    settings.TALIA_REPLY_WAIT_S = 0


def say(client, content: str, **fields: str):
    body = {"session_id": SESSION, "author": "user", "content": content, **fields}
    return client.post(
        "/api/webchat/messages", data=json.dumps(body), content_type="application/json", HTTP_USER_AGENT=FIREFOX
    )


def test_the_page_and_browser_are_stored_and_shown_in_the_sidebar(client, db, django_user_model):
    first = say(client, "Hola", page="https://shop.example/precios?utm=x&email=a@b.c#plan")
    again = say(client, "¿Y el plan anual?")  # no page this time: the last one known is kept

    assert first.status_code == 202 and again.status_code == 202
    message = Message.objects.get(pk=first.json()["metadata"]["last_message_id"])
    assert message.metadata["page"] == "https://shop.example/precios"  # no query or fragment kept
    assert message.metadata["user_agent"] == FIREFOX

    supervisor = django_user_model.objects.create_user("sara", is_staff=True)
    page = signed_in(supervisor).get(f"/console/conversations/{message.conversation_id}/")
    html = page.content.decode()
    assert 'href="https://shop.example/precios"' in html
    assert "Firefox · Windows" in html


@pytest.mark.parametrize("page", ["javascript:alert(1)", "file:///etc/passwd", "https://a b"])
def test_a_page_that_is_not_a_web_address_is_refused(client, db, page):
    response = say(client, "Hola", page=page)

    assert response.status_code == 400
    assert "page" in response.json()["error"]["fields"]
    assert not Message.objects.exists()
