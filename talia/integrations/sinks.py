"""The contract between the event publisher and the sinks it hands events to.

Invariants:
- An event is published as one `Envelope` (versioned: `SCHEMA_VERSION`, documented in docs/events.md,
  a JSON Schema per event type in docs/events/schemas/). Its `id` is the Event row's id: a redelivered
  event carries the same id, so consumers deduplicate on it.
- A sink is an object with a stable `key` ("redis-stream", "kafka", "webhook:<pk>", "calendar:<pk>"):
  the publisher records one delivery per (event, sink key). `deliver()` returns when the sink has the
  event and raises `DeliveryFailed` when it has not; anything else it raises counts as a failure too.
- Sinks do not retry: the publisher retries a failed delivery with backoff and jitter, in order per
  conversation and sink, without holding back other sinks.
- Personal fields (`personal_keys()`: names, email, phone, message text, and what each app declared
  personal to the retention policy) reach a sink only when it says `personal_data = True`; the publisher
  builds the envelope for each sink accordingly.
- Sinks come from providers (`@provider`), functions each sink module registers that return the sinks
  enabled right now (e.g. one per active webhook endpoint); the publisher asks them on every pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from conversations import retention

SCHEMA_VERSION = 1

# Payload keys that identify a person or carry what they said, whatever the event; dropped unless the sink
# takes personal data.
PERSONAL_KEYS = frozenset(
    {"full_name", "email", "phone", "from_number", "to_number", "text", "attendees", "notes", "comment"}
)


def personal_keys(event_type: str) -> frozenset[str]:
    """The personal payload keys of an event type: PERSONAL_KEYS and those its app declared to the retention
    policy (`conversations.retention.personal_event_keys`: a handoff's reason, a lead's company, a
    meeting's title...), so what retention clears is never what a sink without personal data receives."""
    return PERSONAL_KEYS | frozenset(retention.PERSONAL_EVENT_KEYS.get(event_type, ()))


@dataclass(frozen=True)
class Envelope:
    """One published event: `{id, type, version, occurred_at, conversation_id, contact_id, channel, data}`."""

    id: int
    type: str
    occurred_at: str  # ISO 8601, UTC
    conversation_id: str | None
    contact_id: str | None
    channel: str | None
    data: dict[str, Any] = field(default_factory=dict)
    version: int = SCHEMA_VERSION

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        """The envelope as compact UTF-8 JSON: what webhooks, Redis Streams and Kafka carry."""
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":"), default=str).encode()


class DeliveryFailed(Exception):
    """A sink did not take the event: `reason` is shown in the admin, `status_code` when HTTP gave one."""

    def __init__(self, reason: str, *, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class Sink:
    """A destination for events. Subclasses set `key` and `label` and implement `deliver()`."""

    key: str = ""
    label: str = ""
    personal_data: bool = False

    def accepts(self, event_type: str) -> bool:
        """Whether this sink wants events of this type (all, unless it is configured otherwise)."""
        return True

    def deliver(self, envelope: Envelope) -> int | None:
        """Hand over one event; returns an HTTP status code when there is one. Raises DeliveryFailed."""
        raise NotImplementedError

    def deliver_many(self, envelopes: Sequence[Envelope]) -> Sequence[Exception | int | None]:
        """Hand over several events in order (a sink may batch them); one outcome per envelope: None or an
        HTTP status code (int) = delivered, an exception = not delivered.

        The default delivers one by one and stops at the first failure: the rest fail with the same error,
        so that a conversation's later events never overtake an earlier one.
        """
        outcomes: list[Exception | int | None] = []
        failure: Exception | None = None
        for envelope in envelopes:
            if failure is None:
                try:
                    outcomes.append(self.deliver(envelope))
                    continue
                except Exception as error:  # noqa: BLE001 - every failure is recorded by the publisher
                    failure = error
            outcomes.append(failure)
        return outcomes

    def close(self) -> None:
        """Flush and release what the sink holds (the publisher calls it when it stops)."""


SinkProvider = Callable[[], Iterable[Sink]]
_providers: list[SinkProvider] = []


def provider(function: SinkProvider) -> SinkProvider:
    """Register a function that returns the sinks enabled now (decorator; idempotent)."""
    if function not in _providers:
        _providers.append(function)
    return function


def enabled_sinks() -> list[Sink]:
    """Every sink enabled now, from every registered provider, in registration order."""
    return [sink for function in _providers for sink in function()]
