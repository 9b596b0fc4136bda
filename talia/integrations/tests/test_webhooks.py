"""The webhook sink against a real local HTTP receiver: Standard Webhooks signing (checked by an
independent implementation), retries with backoff, personal data only when the endpoint takes it, and the
admin's test event."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conversations import events
from talia.integrations import publisher
from talia.integrations.models import DeliveryStatus, EventDelivery, WebhookEndpoint
from talia.integrations.tests.helpers import publish_until_settled, visitor_says
from talia.integrations.tests.receiver import Receiver

pytestmark = pytest.mark.django_db


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification written from the spec with the standard library only."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(signature, expected)
        for version, _, signature in (part.partition(",") for part in headers["webhook-signature"].split())
    )


def test_deliveries_are_signed_as_standard_webhooks_say(receiver, no_stream):
    endpoint = WebhookEndpoint.objects.create(url=receiver.url)
    visitor_says("session-sign-0001")

    publisher.run_pass()

    assert len(receiver.requests) == 2  # conversation_opened, message_received
    for request in receiver.requests:
        assert verify(endpoint.secret, request.headers, request.body)
        assert request.headers["webhook-id"] == str(request.envelope["id"])
        assert abs(int(request.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 300
        assert request.headers["content-type"] == "application/json"
        assert not verify(endpoint.secret, request.headers, request.body + b" ")
    other = WebhookEndpoint(url=receiver.url).secret
    assert not verify(other, receiver.requests[0].headers, receiver.requests[0].body)
    assert [r.envelope["type"] for r in receiver.requests] == ["conversation_opened", "message_received"]
    assert receiver.requests[0].envelope["version"] == 1


def test_new_endpoints_get_a_standard_secret():
    endpoint = WebhookEndpoint.objects.create(url="https://crm.example/hook")
    assert endpoint.secret.startswith("whsec_")
    assert len(base64.b64decode(endpoint.secret.removeprefix("whsec_"))) == 32
    endpoint.full_clean()


@pytest.mark.parametrize("url", ["ftp://crm.example/hook", "file:///etc/passwd", "gopher://x.example/"])
def test_only_http_urls_are_accepted(url):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        WebhookEndpoint(url=url).full_clean()
    assert "url" in error.value.message_dict


def test_a_500_twice_then_200_is_delivered_once_more_with_growing_backoff(receiver, no_stream, settings):
    settings.TALIA_EVENTS_RETRY_BASE_S = 2
    endpoint = WebhookEndpoint.objects.create(url=receiver.url, event_types="conversation_opened")
    visitor_says("session-retry-0001")
    receiver.statuses[:] = [500, 500]
    now = timezone.now()

    publisher.run_pass(now=now)
    delivery = EventDelivery.objects.get(sink_key=endpoint.sink_key)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    first_wait = delivery.next_attempt_at - now
    publisher.run_pass(now=now + timedelta(seconds=1))  # not due yet: nothing sent
    assert len(receiver.requests) == 1

    second = delivery.next_attempt_at
    publisher.run_pass(now=second)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 2, "HTTP 500")
    second_wait = delivery.next_attempt_at - second
    publisher.run_pass(now=delivery.next_attempt_at)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert timedelta(seconds=1.6) <= first_wait <= timedelta(seconds=2)
    assert timedelta(seconds=3.2) <= second_wait <= timedelta(seconds=4)
    publish_until_settled(start=delivery.next_attempt_at + timedelta(hours=1))
    assert len(receiver.requests) == 3


def test_personal_fields_reach_only_endpoints_that_take_them(receiver, no_stream):
    personal_receiver = Receiver()
    try:
        types = "lead_captured,message_received"
        WebhookEndpoint.objects.create(url=receiver.url, event_types=types)
        WebhookEndpoint.objects.create(url=personal_receiver.url, event_types=types, personal_data=True)
        conversation = visitor_says("session-personal-0001", "Me llamo Lucía, escribidme")
        events.emit(
            events.LEAD_CAPTURED,
            conversation=conversation,
            full_name="Lucía Pérez",
            email="lucia@example.com",
            phone="+34600111222",
            company="Acme",
        )

        publish_until_settled()
    finally:
        personal_receiver.stop()

    assert EventDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 4
    plain = b"".join(r.body for r in receiver.requests).decode()
    personal = b"".join(r.body for r in personal_receiver.requests).decode()
    # The company too: the retention policy clears it with the rest (sinks.personal_keys).
    for value in ("lucia@example.com", "+34600111222", "Lucía Pérez", "Me llamo Lucía", "Acme"):
        assert value not in plain
        assert value in personal
    message = next(e for e in personal_receiver.envelopes() if e["type"] == "message_received")
    assert message["data"]["text"] == "Me llamo Lucía, escribidme"


def test_admin_sends_a_test_event_and_shows_the_result(receiver, admin_client):
    endpoint = WebhookEndpoint.objects.create(url=receiver.url)
    url = reverse("admin:integrations_webhookendpoint_changelist")

    response = admin_client.post(url, {"action": "send_test_event", "_selected_action": [endpoint.pk]}, follow=True)

    assert response.status_code == 200
    (request,) = receiver.requests
    assert request.envelope["type"] == "webhook.test"
    assert verify(endpoint.secret, request.headers, request.body)
    assert request.headers["webhook-id"].startswith("test_")
    assert any("200" in str(m) for m in response.context["messages"])

    receiver.statuses[:] = [503]
    response = admin_client.post(url, {"action": "send_test_event", "_selected_action": [endpoint.pk]}, follow=True)
    assert any("503" in str(m) for m in response.context["messages"])


def test_admin_endpoint_page_shows_recent_deliveries(receiver, admin_client, no_stream):
    endpoint = WebhookEndpoint.objects.create(url=receiver.url)
    visitor_says("session-admin-0001")
    publisher.run_pass()

    response = admin_client.get(reverse("admin:integrations_webhookendpoint_change", args=[endpoint.pk]))

    assert response.status_code == 200
    assert endpoint.secret in response.content.decode()
    assert "message_received" in response.content.decode()
