"""The contact sidebar and unread counts in a real browser: an agent corrects the contact's details, then
sees a new message from that contact counted on the queue page and in the tab title."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from conversations import events, inbox, state
from conversations.models import Contact, Event

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a-long-agent-password"
SESSION = "sidebar-browser-0001"
OTHER = "sidebar-browser-0002"


def seen_in(page: Any, sockets: list[list[str]], after: int, text: str) -> bool:
    """Whether a frame containing `text` arrives on a socket the page opened after the first `after` ones
    (bounded wait, 20 s). Playwright hands frames over only while it is called: poll through it."""
    for _ in range(400):
        if any(text in frame for frames in sockets[after:] for frame in frames):
            return True
        page.wait_for_timeout(50)
    return False


def record_frames(page: Any) -> list[list[str]]:
    """The frames each socket of the page receives, one list per socket, in the order they open."""
    sockets: list[list[str]] = []

    def opened(ws: Any) -> None:
        frames: list[str] = []
        sockets.append(frames)
        ws.on("framereceived", lambda frame: frames.append(str(frame)))

    page.on("websocket", opened)
    return sockets


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 900}}


def test_an_agent_edits_the_contact_and_sees_a_new_message_counted_in_the_title(
    live_system: LiveServer, page: Any
) -> None:
    ana = get_user_model().objects.create_user("ana", password=PASSWORD, first_name="Ana")
    ana.groups.add(Group.objects.get_or_create(name="agents")[0])
    conversation = inbox.receive("web", SESSION, "Hola, quiero un presupuesto", assistant_turn=False).conversation
    state.request_handoff(conversation, requested_by="contact")
    state.claim_conversation(conversation, ana)
    other = inbox.receive("web", OTHER, "Buenas, otra consulta", assistant_turn=False).conversation
    state.request_handoff(other, requested_by="contact")
    state.claim_conversation(other, ana)
    sockets = record_frames(page)

    page.goto(f"{live_system.url}/console/conversations/{conversation.pk}/")
    page.get_by_label("Usuario").fill("ana")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()

    # A bad address is refused under its field and stores nothing.
    email = page.locator("#contact-email")
    email.fill("lucia@")
    page.locator("#contact-save").click()
    expect(page.locator("#contact-email-error")).to_be_visible(timeout=20_000)
    assert Contact.objects.get(pk=conversation.contact_id).email == ""

    # A good one and a name are stored through the lead writer; what each held before is shown.
    email.fill("lucia@example.com")
    page.locator("#contact-full_name").fill("Lucía Pérez")
    page.locator("#contact-save").click()
    expect(page.locator("#contact-email-previous")).to_be_visible(timeout=20_000)
    expect(page.locator("#contact-email-error")).to_be_hidden()
    expect(page.locator(".console-bar h1")).to_have_text("Lucía Pérez")
    contact = Contact.objects.get(pk=conversation.contact_id)
    assert (contact.full_name, contact.email) == ("Lucía Pérez", "lucia@example.com")
    assert Event.objects.filter(name=events.CONTACT_EDITED.name, payload__agent_id=ana.pk).exists()

    # On the queue page the agent's conversation is followed live: a new message is counted.
    opened = len(sockets)
    page.goto(f"{live_system.url}/console/")
    row = page.locator(f"#mine-list li[data-conversation-id='{conversation.pk}']")
    expect(row).to_be_visible()
    assert seen_in(page, sockets, opened, f'"watching", "conversation_id": "{conversation.pk}"')
    expect(page).not_to_have_title(re.compile(r"^\(\d+\) "))
    inbox.receive("web", SESSION, "¿Sigues ahí?", assistant_turn=False)
    expect(page).to_have_title(re.compile(r"^\(1\) "), timeout=20_000)
    expect(row.locator(".unread")).to_contain_text("1")

    # Viewing the conversation reads it: the count is gone from the title and the row.
    row.locator("a.contact").click()
    expect(page.locator("#messages")).to_contain_text("¿Sigues ahí?")
    expect(page).not_to_have_title(re.compile(r"^\(\d+\) "))
    page.goto(f"{live_system.url}/console/")
    expect(page).not_to_have_title(re.compile(r"^\(\d+\) "))
    expect(row.locator(".unread")).to_have_count(0)

    # On one conversation's page, a message in another of mine is counted in the title and on its row.
    opened = len(sockets)
    row.locator("a.contact").click()
    assert seen_in(page, sockets, opened, f'"watching", "conversation_id": "{other.pk}"')
    inbox.receive("web", OTHER, "¿Hay alguien?", assistant_turn=False)
    expect(page).to_have_title(re.compile(r"^\(1\) Lucía Pérez"), timeout=20_000)
    page.goto(f"{live_system.url}/console/")
    other_row = page.locator(f"#mine-list li[data-conversation-id='{other.pk}']")
    expect(other_row.locator(".unread")).to_contain_text("1")
    expect(row.locator(".unread")).to_have_count(0)
