"""The Kafka sink: every event as one record on a Kafka topic (docs/kafka.md).

Invariants:
- Enabled when TALIA_KAFKA_BOOTSTRAP_SERVERS is set; the provider returns no sink otherwise.
- The record's key is the conversation id (the contact id for events without a conversation, the event
  type for events with neither), so one conversation's events land in one partition, in order. The value
  is the envelope's JSON; the headers carry the event's id, type and envelope version.
- The producer is idempotent (`enable.idempotence`, `acks=all`): librdkafka's own retries never duplicate
  or reorder a record within a partition. A redelivery by the publisher carries the same event id.
- `deliver_many()` produces every envelope, then waits for the delivery reports for at most
  TALIA_KAFKA_TIMEOUT_S; what is not confirmed by then is purged and fails. When an event of a
  conversation fails, the later events of that conversation in the batch fail too (even if Kafka took
  them), so the publisher redelivers them after the earlier one, and consumers deduplicate on the id.
- One producer per process, created on first use and flushed and closed by `close()`; it is replaced
  when its configuration changes or after a fatal error. The configuration (TALIA_KAFKA_CONFIG may hold
  SASL credentials) is never logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from django.conf import settings

from talia.integrations import sinks
from talia.integrations.sinks import DeliveryFailed, Envelope

logger = logging.getLogger("talia.integrations.kafka")

DEFAULT_TOPIC = "talia.events"


def family(event_type: str) -> str:
    """The event's family: its type up to the first "_" (`message_received` -> `message`)."""
    return event_type.split("_", 1)[0]


def record_key(envelope: Envelope) -> str:
    """The partitioning key: conversation id, else contact id, else the event type."""
    return envelope.conversation_id or envelope.contact_id or envelope.type


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    topic: str = DEFAULT_TOPIC
    topic_per_family: bool = False
    personal_data: bool = False
    timeout_s: float = 10.0
    extra: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_settings(cls) -> KafkaSettings:
        return cls(
            bootstrap_servers=settings.TALIA_KAFKA_BOOTSTRAP_SERVERS,
            topic=settings.TALIA_KAFKA_TOPIC,
            topic_per_family=settings.TALIA_KAFKA_TOPIC_PER_FAMILY,
            personal_data=settings.TALIA_KAFKA_PERSONAL,
            timeout_s=settings.TALIA_KAFKA_TIMEOUT_S,
            extra=tuple(sorted(settings.TALIA_KAFKA_CONFIG.items())),
        )

    def producer_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            # librdkafka gives up on a record after this long, so an unreachable cluster fails the batch
            # within the sink's timeout instead of keeping records queued behind the publisher's back.
            "message.timeout.ms": max(1, int(self.timeout_s * 1000)),
            "linger.ms": 5,
            "client.id": "talia",
        }
        config.update(dict(self.extra))
        # Not overridable: ordering and no duplicates within a partition depend on them.
        config.update({"bootstrap.servers": self.bootstrap_servers, "enable.idempotence": True, "acks": "all"})
        return config


class _SharedProducer:
    """The process's one producer, for the configuration it was made with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self._config: KafkaSettings | None = None
        self.fatal = False

    def get(self, config: KafkaSettings) -> Producer:
        with self._lock:
            if self._producer is not None and (self._config != config or self.fatal):
                self._close_locked(timeout_s=config.timeout_s)
            if self._producer is None:
                self.fatal = False
                self._producer = Producer(config.producer_config(), logger=logger, error_cb=self._on_error)
                self._config = config
            return self._producer

    def close(self, timeout_s: float) -> None:
        with self._lock:
            self._close_locked(timeout_s=timeout_s)

    def _close_locked(self, *, timeout_s: float) -> None:
        producer, self._producer, self._config = self._producer, None, None
        if producer is not None:
            left = producer.flush(timeout_s)
            if left:
                logger.warning("Kafka: %d records not confirmed when the producer was closed", left)
            producer.close()

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            # An idempotent producer's fatal error (e.g. a sequence gap) ends it: the next use makes a new one.
            self.fatal = True
        logger.warning("Kafka: %s", error.str())


_shared = _SharedProducer()


class KafkaSink(sinks.Sink):
    key = "kafka"
    label = "Kafka"

    def __init__(self, config: KafkaSettings) -> None:
        self.config = config
        self.personal_data = config.personal_data

    def topic(self, envelope: Envelope) -> str:
        if self.config.topic_per_family:
            return f"{self.config.topic}.{family(envelope.type)}"
        return self.config.topic

    def deliver(self, envelope: Envelope) -> int | None:
        outcome = self.deliver_many([envelope])[0]
        if outcome is not None:
            raise outcome
        return None

    def deliver_many(self, envelopes: Sequence[Envelope]) -> list[Exception | None]:
        producer = _shared.get(self.config)
        outcomes: list[Exception | None] = [None] * len(envelopes)
        confirmed = [False] * len(envelopes)
        refused: set[str] = set()  # keys with an event not handed to the producer: later ones are held back

        def report(index: int, error: KafkaError | None) -> None:
            if error is None:
                confirmed[index] = True
            else:
                outcomes[index] = DeliveryFailed(f"Kafka: {error.str()}")
                if error.fatal():
                    _shared.fatal = True

        for index, envelope in enumerate(envelopes):
            key = record_key(envelope)
            if key in refused:
                continue
            try:
                self._produce(producer, envelope, key, lambda error, _message, i=index: report(i, error))
            except (KafkaException, BufferError, TypeError, ValueError) as error:
                outcomes[index] = DeliveryFailed(f"Kafka refused the record: {_describe(error)}")
                refused.add(key)
        if producer.flush(self.config.timeout_s):
            # Not confirmed in time: purged now, so a record never reaches Kafka after it was reported failed
            # (one already sent may still arrive: consumers deduplicate on the event id).
            producer.purge(in_queue=True, in_flight=True)
            producer.flush(0)
        return _hold_back(envelopes, outcomes, confirmed)

    def _produce(self, producer: Producer, envelope: Envelope, key: str, on_delivery: Any) -> None:
        headers = [
            ("event_id", str(envelope.id).encode()),
            ("event_type", envelope.type.encode()),
            ("event_version", str(envelope.version).encode()),
        ]
        arguments = {"value": envelope.to_json(), "key": key.encode(), "headers": headers, "on_delivery": on_delivery}
        try:
            producer.produce(self.topic(envelope), **arguments)
        except BufferError:
            # The local queue is full: let it drain for a moment, then try once more.
            producer.poll(min(1.0, self.config.timeout_s))
            producer.produce(self.topic(envelope), **arguments)
        producer.poll(0)

    def close(self) -> None:
        _shared.close(self.config.timeout_s)


def _hold_back(
    envelopes: Sequence[Envelope], outcomes: list[Exception | None], confirmed: list[bool]
) -> list[Exception | None]:
    """Unconfirmed records fail; after a failure, the rest of that conversation's records fail too."""
    failed: dict[str, int] = {}
    for index, envelope in enumerate(envelopes):
        key = record_key(envelope)
        if key in failed:
            outcomes[index] = DeliveryFailed(
                f"Kafka: held back behind event {envelopes[failed[key]].id} of the same conversation"
            )
            continue
        if outcomes[index] is None and not confirmed[index]:
            outcomes[index] = DeliveryFailed("Kafka: no delivery report within the timeout")
        if outcomes[index] is not None:
            failed[key] = index
    return outcomes


def _describe(error: BaseException) -> str:
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        return str(error.args[0].str())
    return str(error)


@sinks.provider
def kafka_sinks() -> list[sinks.Sink]:
    if not settings.TALIA_KAFKA_BOOTSTRAP_SERVERS:
        return []
    return [KafkaSink(KafkaSettings.from_settings())]
