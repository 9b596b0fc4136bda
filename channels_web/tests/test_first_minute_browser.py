"""The widget's first minute in a real browser, in Spanish and English, in and out of business hours.

The server is another process, so its clock is not frozen: the profile's hours are set relative to today
instead (open all day, or a holiday all this week), so "now" is in or out of hours whenever the test runs,
and the next opening is known (09:00 in Madrid, eight days from now). axe-core (a vendored test asset,
talia/testing/assets/) checks the widget closed, open, with the consent notice and with the forms.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

import talia.testing
from conversations import profile
from conversations.models import WEEKDAYS, AssistantProfile, Contact, Conversation, HandoffRequest

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

AXE = Path(talia.testing.__file__).parent / "assets" / "axe.min.js"
WEEKDAYS_ES = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]
MONTHS_ES = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre"]
MONTHS_ES += ["noviembre", "diciembre"]
WIDGET = "talia-widget"


def business(**fields: Any) -> AssistantProfile:
    return AssistantProfile.objects.create(business_name="Clínica Sonrisas", time_zone="Europe/Madrid", **fields)


def always_open() -> dict[str, list[list[str]]]:
    return {day: [["00:00", "23:59:59"]] for day in WEEKDAYS}


def closed_this_week() -> dict[str, Any]:
    today = timezone.localdate()
    return {
        "business_hours": {day: [["09:00", "18:00"]] for day in WEEKDAYS},
        "holidays": [(today + timedelta(days=offset)).isoformat() for offset in range(-1, 8)],
    }


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations inside the widget (its shadow DOM included)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async (host) => {
            const result = await axe.run(document.querySelector(host), { resultTypes: ['violations'] });
            return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => `${v.id}: ${v.nodes.map(n => JSON.stringify(n.target)).join(', ')}`);
        }""",
        WIDGET,
    )


def focused(page: Any) -> str:
    """What has the keyboard focus: inside the widget, its class (or tag); elsewhere, 'page:<tag>'."""
    return page.evaluate(
        """() => {
            const a = document.activeElement;
            if (!a || a.tagName !== 'TALIA-WIDGET') return 'page:' + (a ? a.tagName.toLowerCase() : '');
            const e = a.shadowRoot.activeElement;
            return e ? (e.getAttribute('class') || e.tagName.toLowerCase()) : 'host';
        }"""
    )


class TestInSpanish:
    @pytest.fixture
    def browser_context_args(self) -> dict[str, Any]:
        return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}

    def test_in_hours_greeting_reply_time_prechat_form_and_one_way_to_a_person(
        self, live_system: LiveServer, page: Any
    ) -> None:
        business(
            reply_minutes=5,
            business_hours=always_open(),
            prechat_fields=["full_name", "email"],
            prechat_required=["full_name"],
        )
        page.goto(f"{live_system.url}/")
        assert serious_violations(page) == []  # closed

        # The launcher comes first in the tab order, with a visible focus ring.
        page.keyboard.press("Tab")
        assert focused(page) == "ln"
        ring = page.evaluate(
            "() => getComputedStyle(document.querySelector('talia-widget').shadowRoot.activeElement).outlineStyle"
        )
        assert ring == "solid"
        page.keyboard.press("Enter")

        greeting = page.locator(f"{WIDGET} .g")
        expect(greeting).to_contain_text("Hola, esto es Clínica Sonrisas.")
        expect(greeting).to_contain_text("Solemos responder en 5 min.")
        notice = page.locator(f"{WIDGET} .bar").filter(has_text="Guardamos esta conversación")
        expect(notice).to_be_visible()
        expect(page.locator(f"{WIDGET} [role=status].sr")).to_contain_text("Guardamos esta conversación")  # announced
        name = page.get_by_label("Nombre")
        expect(name).to_be_focused()
        expect(page.get_by_label("Tu mensaje")).to_be_hidden()  # the form comes first
        # One way to ask for a person at a time, never two.
        expect(page.get_by_role("button", name="Hablar con una persona")).to_have_count(1)
        assert serious_violations(page) == []  # open, consent notice and pre-chat form

        # Without consent the details are not stored, and the visitor is told why.
        name.fill("Ana Pérez")
        page.get_by_label("Correo").fill("ana@example.com")
        page.get_by_role("button", name="Enviar").first.click()
        expect(page.get_by_text("Para guardar tus datos, acepta el aviso.")).to_be_visible()
        assert Contact.objects.get().full_name == ""
        notice.get_by_role("button", name="Aceptar").click()
        expect(notice).to_be_hidden()
        page.get_by_role("button", name="Enviar").first.click()

        expect(name).to_be_hidden()
        expect(page.get_by_label("Tu mensaje")).to_be_visible()
        contact = Contact.objects.get()
        assert (contact.full_name, contact.email) == ("Ana Pérez", "ana@example.com")
        expect(page.get_by_role("button", name="Chatear con el asistente")).to_be_visible()
        expect(page.get_by_role("button", name="Hablar con una persona")).to_have_count(1)
        assert serious_violations(page) == []

        page.get_by_role("button", name="Hablar con una persona").click()
        expect(page.get_by_role("button", name="Dejar de esperar")).to_be_visible()
        expect(page.get_by_text("Esperando a una persona del equipo…")).to_be_visible()
        expect(page.get_by_text("fuera de horario")).to_have_count(0)
        queued = Conversation.objects.select_related("contact").get()
        assert (str(queued.contact), queued.handoff_requests.get().out_of_hours) == ("Ana Pérez", False)

        expect(page.get_by_label("Tu mensaje")).to_be_focused()  # back to the message box once queued
        page.keyboard.press("Escape")
        expect(page.locator(f"{WIDGET} .pn")).to_be_hidden()
        assert focused(page) == "ln"

    def test_out_of_hours_the_greeting_says_when_the_team_is_back(self, live_system: LiveServer, page: Any) -> None:
        business(reply_minutes=5, **closed_this_week())
        back = profile.current().next_opening()
        assert back is not None

        page.goto(f"{live_system.url}/")
        page.get_by_role("button", name="Abrir el chat").click()

        greeting = page.locator(f"{WIDGET} .g")
        when = f"{WEEKDAYS_ES[back.weekday()]}, {back.day} de {MONTHS_ES[back.month - 1]} de {back.year}, 9:00"
        expect(greeting).to_contain_text(f"Estamos fuera de horario; volvemos el {when}.")
        expect(greeting).not_to_contain_text("Solemos responder")


class TestInEnglishOnAPhone:
    @pytest.fixture
    def browser_context_args(self) -> dict[str, Any]:
        return {"locale": "en-US", "viewport": {"width": 390, "height": 800}, "is_mobile": True, "has_touch": True}

    def test_out_of_hours_a_person_is_promised_for_the_next_opening_and_a_phone_is_left(
        self, live_system: LiveServer, page: Any
    ) -> None:
        business(reply_minutes=5, **closed_this_week())
        back = profile.current().next_opening()
        assert back is not None

        page.goto(f"{live_system.url}/")
        page.get_by_role("button", name="Open the chat").click()
        greeting = page.locator(f"{WIDGET} .g")
        expect(greeting).to_contain_text("Hi, this is Clínica Sonrisas. How can we help?")
        expect(greeting).to_contain_text(f"We’re out of hours; back on {back:%A, %B} {back.day}, {back.year}")
        expect(greeting).not_to_contain_text("We usually reply")

        # Full screen on a phone: Tab and Shift+Tab stay inside the panel.
        for key in ["Tab"] * 15 + ["Shift+Tab"] * 15:
            page.keyboard.press(key)
            assert not focused(page).startswith("page:"), key

        page.get_by_role("button", name="Chat with the assistant").click()
        page.get_by_role("button", name="Talk to a person").click()
        expect(page.get_by_text(f"We’re out of hours; back on {back:%A, %B} {back.day}")).to_have_count(2)
        expect(page.get_by_role("button", name="Stop waiting")).to_be_visible()
        phone = page.get_by_label("Phone")
        expect(phone).to_be_visible()
        assert serious_violations(page) == []  # the callback form and the consent notice
        page.locator(f"{WIDGET} .bar").get_by_role("button", name="Accept").click()

        phone.fill("123")
        page.get_by_role("button", name="Send").first.click()
        expect(page.get_by_text("Check the marked details.")).to_be_visible()
        expect(phone).to_have_attribute("aria-invalid", "true")
        phone.fill("+34 600 123 456")
        page.get_by_role("button", name="Send").first.click()
        expect(phone).to_be_hidden()
        expect(page.get_by_text("Thank you, we’ve noted your answer.")).to_be_visible()

        conversation = Conversation.objects.select_related("contact").get()
        assert (conversation.contact.phone, conversation.status) == ("+34600123456", "queued")
        assert HandoffRequest.objects.get(conversation=conversation).out_of_hours is True

    def test_the_full_page_chat_for_links_and_qr_codes(self, live_system: LiveServer, page: Any) -> None:
        business(business_hours=always_open(), reply_minutes=10, offer_choice=True)

        page.goto(f"{live_system.url}/chat/?lang=en")

        expect(page.locator(f"{WIDGET} .pn")).to_be_visible()
        expect(page.get_by_role("button", name="Open the chat")).to_be_hidden()
        greeting = page.locator(f"{WIDGET} .g")
        expect(greeting).to_contain_text("Hi, this is Clínica Sonrisas. How can we help?")
        expect(greeting).to_contain_text("We usually reply within 10 min.")
        expect(page.get_by_role("button", name="Chat with the assistant")).to_be_visible()  # the profile's choice
        expect(page.get_by_role("button", name="Talk to a person")).to_have_count(1)
        assert serious_violations(page) == []
        page.keyboard.press("Escape")  # nothing to close to
        expect(page.locator(f"{WIDGET} .pn")).to_be_visible()
