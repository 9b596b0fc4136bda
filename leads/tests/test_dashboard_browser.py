"""The lead pipeline in a real browser: a card moved by dragging and one moved with the keyboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from conversations import inbox
from leads import pipeline
from leads.models import LeadCard, LeadMovement
from talia.testing.plugin import wait_for

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a-long-staff-password"


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1400, "height": 900}}


def lead(session: str, name: str) -> LeadCard:
    conversation = inbox.receive("web", session, "Hola").conversation
    type(conversation.contact).objects.filter(pk=conversation.contact_id).update(full_name=name)
    conversation.contact.refresh_from_db()
    card, _ = pipeline.card_for(conversation.contact, conversation, LeadMovement.MovedBy.ASSISTANT)
    return card


def test_cards_move_between_stages_by_drag_and_by_keyboard(live_system: LiveServer, page: Any) -> None:
    get_user_model().objects.create_user("berta", password=PASSWORD, first_name="Berta", is_staff=True)
    dragged, chosen = lead("board-0001", "Lucía Gómez"), lead("board-0002", "John Smith")

    page.goto(f"{live_system.url}/console/dashboard/")
    page.get_by_label("Usuario").fill("berta")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    card = page.locator(f"li.card[data-card-id='{dragged.pk}']")
    expect(card).to_be_visible()

    card.drag_to(page.locator("section.column[data-stage='qualified']"))
    expect(page.locator(f"section.column[data-stage='qualified'] li.card[data-card-id='{dragged.pk}']")).to_be_visible()
    page.get_by_label("Etapa de John Smith").select_option("won")
    page.locator(f"li.card[data-card-id='{chosen.pk}']").get_by_role("button", name="Mover").click()
    expect(page.locator(f"section.column[data-stage='won'] li.card[data-card-id='{chosen.pk}']")).to_be_visible()

    wait_for(lambda: LeadCard.objects.get(pk=chosen.pk).stage == "won")
    assert LeadCard.objects.get(pk=dragged.pk).stage == "qualified"
    moves = LeadMovement.objects.filter(moved_by="agent").order_by("created")
    assert list(moves.values_list("card_id", "from_stage", "to_stage", "user__username")) == [
        (dragged.pk, "new", "qualified", "berta"),
        (chosen.pk, "new", "won", "berta"),
    ]
