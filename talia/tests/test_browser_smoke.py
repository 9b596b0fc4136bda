"""The running system through a real browser: Daphne, a Celery worker and Debian's Chromium.

Data goes both ways across processes: the test creates the superuser with the ORM and the server logs
it in; the server records the login and the test reads it back.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

PASSWORD = "correct horse battery staple"


def test_health_reports_every_part_up(live_system: LiveServer, page: Any) -> None:
    response = page.goto(f"{live_system.url}/health")

    assert response is not None and response.status == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "worker": "ok"}
    assert "no-cache" in response.headers["cache-control"]


def test_superuser_logs_in_to_the_styled_admin(live_system: LiveServer, page: Any, tmp_path: Path) -> None:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)

    page.goto(f"{live_system.url}/admin/login/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(f"{live_system.url}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page.get_by_role("link", name="Users")).to_be_visible()
    # The admin's stylesheet came from whitenoise (collected static files): the header has its colour.
    header_background = page.locator("#header").evaluate("element => getComputedStyle(element).backgroundColor")
    assert header_background not in ("", "transparent", "rgba(0, 0, 0, 0)"), header_background
    page.screenshot(path=str(tmp_path / "admin-index.png"), full_page=True)
    user.refresh_from_db()
    assert user.last_login is not None, "the server did not record the login in the test database"


def test_tests_after_a_browser_test_run_in_an_ordinary_thread(transactional_db: None) -> None:
    """The session's Chromium stays up, but Playwright's "running loop" mark and the ORM bypass do not."""
    assert asyncio._get_running_loop() is None
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
    assert get_user_model().objects.count() == 0  # the ORM works, and the browser tests' rows are gone
    loop = asyncio.new_event_loop()  # a loop can start in this thread again (pytest-asyncio's tests need that)
    try:
        assert loop.run_until_complete(asyncio.sleep(0, result="ran")) == "ran"
    finally:
        loop.close()
