"""Phone channels in the console: media and places on messages, the contact's number, the reply window.

A test-only push channel with a 24-hour reply window stands in for WhatsApp (the console knows channels
only through their specs).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from conversations import inbox, realtime, state
from conversations.models import Message
from conversations.tests.console_helpers import signed_in
from talia.testing.fake_channels.channels import FAKE, fake_spec, plugged

pytestmark = pytest.mark.django_db


@pytest.fixture
def phone_channel() -> Iterator[None]:
    with plugged(fake_spec(reply_window=timedelta(hours=24))):
        yield


@pytest.fixture
def photo(phone_channel: None) -> Message:
    """A contact's photo, already downloaded from the provider, in a conversation waiting in the queue."""
    received = inbox.receive(
        FAKE,
        "34600123456",
        "Mira la foto",
        {
            "attachments": [
                {"url": "https://api.twilio.com/secret/Media/ME1", "content_type": "image/jpeg"},
                {"url": "https://api.twilio.com/secret/Media/ME2", "content_type": "text/html"},
            ],
            "location": {"latitude": 39.47, "longitude": -0.37, "label": "Clínica <Centro>", "address": ""},
        },
        "SM-photo-1",
        display_name="Lucía",
    )
    name = default_storage.save(f"tests/{received.message.pk}-0.html", ContentFile(b"<script>alert(1)</script>"))
    message = received.message
    message.metadata["attachments"][1]["stored"] = name
    message.save(update_fields=["metadata"])
    state.request_handoff(received.conversation, requested_by="contact")
    return message


def url(message: Message, index: int) -> str:
    return f"/console/conversations/{message.conversation_id}/messages/{message.pk}/attachments/{index}"


def test_an_attachment_is_downloaded_never_rendered(photo: Message, agent: Any) -> None:
    response = signed_in(agent).get(url(photo, 1))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content == b"<script>alert(1)</script>"


def test_an_attachment_not_downloaded_yet_or_not_there_is_a_404(photo: Message, agent: Any) -> None:
    client = signed_in(agent)
    assert client.get(url(photo, 0)).status_code == 404  # not fetched from the provider yet
    assert client.get(url(photo, 7)).status_code == 404


def test_only_who_may_watch_the_conversation_gets_its_attachments(
    photo: Message, make_agent: Any, django_user_model: Any
) -> None:
    ana, bea = make_agent("ana"), make_agent("bea")
    state.claim_conversation(photo.conversation, ana)  # now Ana's: not in the queue any more

    assert signed_in(bea).get(url(photo, 1)).status_code == 403
    assert signed_in(ana).get(url(photo, 1)).status_code == 200
    assert signed_in(None).get(url(photo, 1)).status_code in (302, 403)
    assert signed_in(django_user_model.objects.create_user("customer")).get(url(photo, 1)).status_code == 403


def test_the_page_shows_media_the_place_the_number_and_the_open_window(photo: Message, agent: Any) -> None:
    page = signed_in(agent).get(f"/console/conversations/{photo.conversation_id}/", HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()

    assert page.status_code == 200
    assert url(photo, 1) in html and url(photo, 0) not in html  # a link only once downloaded
    assert "(downloading…)" in html
    assert "api.twilio.com" not in html  # the provider's media URLs stay on the server
    assert "Clínica &lt;Centro&gt;" in html and "mlat=39.470000" in html
    assert 'href="tel:+34600123456"' in html
    assert "Reply window open until" in html and 'data-closes-at="' in html


def test_the_page_says_when_the_window_has_closed(photo: Message, agent: Any) -> None:
    Message.objects.filter(pk=photo.pk).update(created=timezone.now() - timedelta(hours=30))

    html = signed_in(agent).get(f"/console/conversations/{photo.conversation_id}/", HTTP_ACCEPT_LANGUAGE="en")
    text = html.content.decode()

    assert "Reply window closed: the contact last wrote on" in text
    assert "data-closes-at" not in text


def test_the_live_payload_carries_media_and_place_but_not_the_providers_urls(photo: Message) -> None:
    payload = realtime.message_payload(Message.objects.get(pk=photo.pk))

    assert payload["attachments"] == [
        {"index": 0, "content_type": "image/jpeg", "stored": False},
        {"index": 1, "content_type": "text/html", "stored": True},
    ]
    assert payload["location"] == {"latitude": 39.47, "longitude": -0.37, "label": "Clínica <Centro>", "address": ""}
    assert "url" not in str(payload["attachments"])


def test_web_messages_carry_neither(lucia: inbox.Received) -> None:
    payload = realtime.message_payload(lucia.message)

    assert "attachments" not in payload and "location" not in payload


def test_queue_and_monitor_rows_show_the_number_on_phone_channels_only(
    photo: Message, lucia: inbox.Received, agent: Any, django_user_model: Any
) -> None:
    state.request_handoff(lucia.conversation, requested_by="contact")  # a web visitor waits too
    boss = django_user_model.objects.create_user("boss", is_staff=True)

    for client, page in ((signed_in(agent), "/console/"), (signed_in(boss), "/console/monitor/")):
        html = client.get(page).content.decode()
        assert '<span class="address">+34600123456</span>' in html
        assert html.count('class="address"') == 1  # the web visitor's session id is no number


def test_phone_address_reads_numbers_only() -> None:
    from conversations.templatetags.console_tags import phone_address

    assert phone_address("34600123456") == "+34600123456"
    assert phone_address("+14155238886") == "+14155238886"
    assert phone_address("session-lucia-0001") == ""
    assert phone_address("12") == ""
    assert phone_address(None) == ""
