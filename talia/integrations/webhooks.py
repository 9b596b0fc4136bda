"""Webhook sink: each active `WebhookEndpoint` receives events as signed POSTs (Standard Webhooks).

- Body: the envelope's JSON. Headers: `webhook-id` (the envelope id, the same on every retry, so the
  receiver deduplicates on it), `webhook-timestamp` (Unix seconds), `webhook-signature` (`v1,<base64>`:
  HMAC-SHA256 of `{id}.{timestamp}.{body}` with the base64-decoded part of the `whsec_` secret; signed by
  the `standardwebhooks` library).
- 2xx = delivered; any other status, a timeout (TALIA_WEBHOOK_TIMEOUT_S) or a network error raises
  `DeliveryFailed`. Redirects are not followed.
- In a batch, a failed HTTP answer holds back only the same conversation's later events; a network error
  or timeout ends the batch (the endpoint is unreachable: the rest would wait for the same timeout).
"""

from __future__ import annotations

import functools
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import httpx2
from django.conf import settings
from standardwebhooks import Webhook

from talia.integrations import sinks
from talia.integrations.models import WebhookEndpoint
from talia.integrations.sinks import DeliveryFailed, Envelope, Sink

USER_AGENT = "TalIA-Webhooks/1"
TEST_EVENT_TYPE = "webhook.test"


def signed_headers(secret: str, message_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The Standard Webhooks headers for one body."""
    moment = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(message_id, datetime.fromtimestamp(moment, UTC), body.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(moment),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@functools.cache
def _client() -> httpx2.Client:
    """One client per process (thread-safe), so connections to an endpoint are kept alive between deliveries."""
    return httpx2.Client(follow_redirects=False)


def _forget_client_after_fork() -> None:
    _client.cache_clear()


os.register_at_fork(after_in_child=_forget_client_after_fork)


def post(endpoint: WebhookEndpoint, envelope: Envelope, *, message_id: str | None = None) -> int:
    """POST one envelope to the endpoint; the status code when 2xx, else DeliveryFailed."""
    body = envelope.to_json()
    headers = signed_headers(endpoint.secret, message_id or str(envelope.id), body)
    try:
        response = _client().post(endpoint.url, content=body, headers=headers, timeout=settings.TALIA_WEBHOOK_TIMEOUT_S)
    except httpx2.HTTPError as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"HTTP {response.status_code}", status_code=response.status_code)
    return response.status_code


def test_envelope() -> Envelope:
    """The `webhook.test` envelope the admin's "Send a test event" sends (id 0: never a real event)."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return Envelope(
        id=0,
        type=TEST_EVENT_TYPE,
        occurred_at=now,
        conversation_id=None,
        contact_id=None,
        channel=None,
        data={"message": "A test event from TalIA."},
    )


def send_test(endpoint: WebhookEndpoint) -> int:
    """Deliver a test event now (its webhook-id is unique: `test_<random>`); DeliveryFailed if refused."""
    return post(endpoint, test_envelope(), message_id=f"test_{secrets.token_hex(8)}")


class WebhookSink(Sink):
    def __init__(self, endpoint: WebhookEndpoint) -> None:
        self.endpoint = endpoint
        self.key = endpoint.sink_key
        self.label = str(endpoint)
        self.personal_data = endpoint.personal_data

    def accepts(self, event_type: str) -> bool:
        return self.endpoint.accepts(event_type)

    def deliver(self, envelope: Envelope) -> int | None:
        return post(self.endpoint, envelope)

    def deliver_many(self, envelopes: Sequence[Envelope]) -> Sequence[Exception | int | None]:
        outcomes: list[Exception | int | None] = []
        failed: dict[str | None, Exception] = {}  # conversation -> the failure holding it back
        unreachable: Exception | None = None
        for envelope in envelopes:
            held = unreachable or (failed.get(envelope.conversation_id) if envelope.conversation_id else None)
            if held is not None:
                outcomes.append(held)
                continue
            try:
                outcomes.append(self.deliver(envelope))
            except DeliveryFailed as error:
                outcomes.append(error)
                if error.status_code is None:
                    unreachable = error
                elif envelope.conversation_id:
                    failed[envelope.conversation_id] = error
        return outcomes


@sinks.provider
def webhook_sinks() -> Iterator[Sink]:
    for endpoint in WebhookEndpoint.objects.filter(active=True).order_by("id"):
        yield WebhookSink(endpoint)
