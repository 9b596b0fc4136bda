"""The dev phone's call tab in a real browser: a staff member calls TalIA on a Daphne running with DEBUG
on, hears (the page's speech synthesis is recorded) the disclosure and the reply to what they typed, and
hangs up; the assistant's turn runs in the real Celery worker."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from channels_voice.models import CallStatus, VoiceCall
from channels_voice.tests.conftest import AUTH_TOKEN
from conversations.models import Message, Sender
from talia.testing.browser import LiveServer
from talia.testing.plugin import wait_for
from talia.testing.sockets import session_cookie

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Headless Chromium may have no speech synthesis (or no voices): the page's calls are recorded instead.
RECORD_SPEECH = """
window.__spoken = [];
window.SpeechSynthesisUtterance = function (text) { this.text = text; this.lang = ""; };
Object.defineProperty(window, "speechSynthesis", {
  configurable: true,
  value: {speak: (u) => window.__spoken.push([u.text, u.lang]), cancel: () => {}},
});
"""


@pytest.fixture
def daphne_debug() -> bool:
    return True  # the dev phone exists only with DEBUG on


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def live_voice(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> LiveServer:
    monkeypatch.setenv("TALIA_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("TALIA_VOICE_TURN_WAIT_S", "12")
    server: LiveServer = request.getfixturevalue("live_system")
    return server


def test_a_call_from_the_call_tab_is_spoken_answered_and_hung_up(
    live_voice: LiveServer, page: Any, django_user_model: Any
):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    name, value = session_cookie(boss).split("=", 1)
    page.context.add_cookies([{"name": name, "value": value, "url": live_voice.url}])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(RECORD_SPEECH)

    page.goto(f"{live_voice.url}/dev/phone/call/")
    expect(page.get_by_role("link", name="WhatsApp")).to_have_attribute("href", "/dev/phone/")
    page.get_by_label("Número de quien llama").fill("+34600999888")
    page.get_by_role("button", name="Llamar").click()

    thread = page.locator("#call-thread")
    expect(thread).to_contain_text("inteligencia artificial", timeout=20_000)
    expect(page.locator("#call-twiml")).to_contain_text("<Gather", use_inner_text=False)
    page.get_by_placeholder("Lo que dice quien llama").fill("Hola, soy Ana <b>")
    page.get_by_role("button", name="Decir").click()

    call = VoiceCall.objects.get(from_number="+34600999888")
    reply = wait_for(lambda: Message.objects.filter(conversation=call.conversation, sender=Sender.ASSISTANT).first())
    expect(thread.locator(".talia").last).to_contain_text(reply.text, timeout=20_000)
    expect(thread.locator(".caller").first).to_contain_text("Hola, soy Ana <b>")  # shown as text, not markup
    spoken = page.evaluate("window.__spoken")
    assert spoken[0][1] == "es-MX" and "inteligencia artificial" in spoken[0][0]
    assert [reply.text, "es-MX"] in spoken

    page.get_by_role("button", name="Colgar").click()

    expect(page.locator("#call-state")).to_have_text("La llamada ha terminado.", timeout=20_000)
    wait_for(lambda: VoiceCall.objects.get(pk=call.pk).status == CallStatus.COMPLETED)
    assert errors == [] and "Traceback" not in live_voice.log()


def test_without_speech_synthesis_the_call_is_still_shown(live_voice: LiveServer, page: Any, django_user_model: Any):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    name, value = session_cookie(boss).split("=", 1)
    page.context.add_cookies([{"name": name, "value": value, "url": live_voice.url}])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script("delete window.speechSynthesis; delete window.SpeechSynthesisUtterance;")

    page.goto(f"{live_voice.url}/dev/phone/call/")
    assert page.evaluate("'speechSynthesis' in window") is False
    page.get_by_role("button", name="Llamar").click()

    expect(page.locator("#call-thread")).to_contain_text("inteligencia artificial", timeout=20_000)
    expect(page.get_by_placeholder("Lo que dice quien llama")).to_be_enabled()
    assert errors == []
