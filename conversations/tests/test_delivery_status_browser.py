"""The console's conversation page shows a provider's delivery status and error on the message, live.

The message is on the test-only pushed channel "fake" (talia.testing.fake_channels), delivered by its
deliverer in this process; the provider's callback is `record_status`, whose push reaches the page's
socket through the live Daphne over the real Redis channel layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from conversations import inbox
from conversations.delivery import record_status
from conversations.models import Sender
from conversations.tasks import deliver_message
from talia.testing.fake_channels.channels import FAKE, fake_spec, plugged

if TYPE_CHECKING:
    from talia.testing.browser import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"locale": "en-GB", "viewport": {"width": 1280, "height": 800}}


def test_a_delivery_status_and_its_error_appear_on_the_message(daphne_server: LiveServer, page: Any) -> None:
    from talia.testing.sockets import session_cookie

    supervisor = get_user_model().objects.create_user("berta", is_staff=True)  # may watch any conversation
    name, value = session_cookie(supervisor).split("=", 1)
    page.context.add_cookies([{"name": name, "value": value, "url": daphne_server.url}])
    with plugged(fake_spec()):
        _, conversation = inbox.ensure_conversation(FAKE, "+34600999111")
        message = inbox.send(conversation, "¿Le viene bien el martes?", sender=Sender.ASSISTANT)
        deliver_message.apply(args=(str(message.pk),))
        message.refresh_from_db()
    page.goto(f"{daphne_server.url}/console/conversations/{conversation.pk}/")
    expect(page.locator("#console[data-watching='true']")).to_have_count(1, timeout=20_000)
    shown = page.locator(f"#messages li[data-id='{message.pk}']")
    expect(shown.locator(".delivery")).to_have_text("Sent")

    record_status(FAKE, message.external_id, "delivered")
    expect(shown.locator(".delivery")).to_have_text("Delivered", timeout=20_000)

    record_status(FAKE, message.external_id, "read")
    record_status(FAKE, message.external_id, "failed", "30008", "Unknown error")  # late: ignored
    expect(shown.locator(".delivery")).to_have_text("Read", timeout=20_000)
    expect(shown.locator(".delivery-error")).to_have_count(0)
