"""The staff pages under their Content-Security-Policy, in a real browser (talia/csp.py).

The policy allows only TalIA's own scripts and styles. An inline script, an inline event handler or an
inline style left in a template or written by console.js would be refused by Chromium, which reports a
`securitypolicyviolation` event and a console error: none may happen while an agent works the queue and
a conversation, and a supervisor opens the monitor, the dashboard and the admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from conversations import inbox, state
from talia.csp import ADMIN_POLICY, HEADER, STAFF_POLICY

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a-long-agent-password"

# Collects every violation the page reports, from before its first script runs.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':' + e.lineNumber);
});
"""


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "es-ES", "viewport": {"width": 1280, "height": 800}}


class Watched:
    """A page whose CSP violations (events and console messages) and policy headers are recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        self.policies: dict[str, str | None] = {}
        page.add_init_script(RECORD_VIOLATIONS)
        page.on(
            "console",
            lambda m: self.console.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.on(
            "response",
            lambda r: (
                self.policies.__setitem__(r.url, r.headers.get(HEADER.lower()))
                if r.request.resource_type == "document"
                else None
            ),
        )

    def violations(self) -> list[str]:
        return [*self.page.evaluate("window.__cspViolations || []"), *self.console]


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()


def test_the_console_works_under_its_policy_with_no_violation(live_system: LiveServer, page: Any) -> None:
    users = get_user_model().objects
    ana = users.create_user("ana", password=PASSWORD, first_name="Ana", is_staff=True, is_superuser=True)
    ana.groups.add(Group.objects.get_or_create(name="agents")[0])
    conversation = inbox.receive("web", "csp-session-0001", "Hola, ¿me atiende una persona?").conversation
    state.request_handoff(conversation, requested_by="contact")
    watched = Watched(page)
    seen: list[str] = []

    sign_in(page, f"{live_system.url}/console/", "ana")
    page.locator(f"a.contact[href*='{conversation.pk}']").click()
    page.locator("#claim-button").click()
    composer = page.locator("#composer-text")
    expect(composer).to_be_visible(timeout=20_000)
    composer.fill("Hola, soy Ana.")
    composer.press("Enter")
    expect(page.locator("#messages")).to_contain_text("Hola, soy Ana.", timeout=20_000)
    seen += watched.violations()
    for path in (
        "/console/",
        "/console/monitor/",
        "/console/dashboard/",
        "/console/meetings/",
        "/admin/",
        "/admin/auth/user/",
    ):
        page.goto(f"{live_system.url}{path}")
        expect(page.locator("body")).to_be_visible()
        page.wait_for_load_state("networkidle")
        seen += watched.violations()

    assert seen == [], seen
    staff_pages = [url for url in watched.policies if "/console/" in url]
    admin_pages = [url for url in watched.policies if "/admin/" in url]
    assert staff_pages and admin_pages
    assert all(watched.policies[url] == STAFF_POLICY for url in staff_pages), watched.policies
    assert all(watched.policies[url] == ADMIN_POLICY for url in admin_pages), watched.policies


def test_an_injected_inline_script_is_refused_and_seen(live_system: LiveServer, page: Any) -> None:
    """The watch above can fail: markup that sneaks an inline script into the console is blocked."""
    get_user_model().objects.create_user("ana", password=PASSWORD, is_staff=True)
    watched = Watched(page)
    sign_in(page, f"{live_system.url}/console/", "ana")
    expect(page.locator("body")).to_be_visible()

    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=\"window.__ran = true\">');"
        "const s = document.createElement('script'); s.textContent = 'window.__ran = true';"
        "document.body.appendChild(s);"
    )
    page.wait_for_function("window.__cspViolations.length >= 2")

    assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in v for v in watched.violations()), watched.violations()
