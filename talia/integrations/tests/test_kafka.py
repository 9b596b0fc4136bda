"""The Kafka sink against librdkafka's built-in mock cluster (a real Kafka protocol implementation, three
brokers on local ports), read back with a real consumer; against a real broker when
TALIA_TEST_KAFKA_BOOTSTRAP names one."""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, Producer
from django.db import transaction

from conversations import inbox, state
from conversations.models import Event, Sender
from talia.env import BASE_DIR
from talia.integrations import envelopes, kafka, sinks
from talia.integrations.sinks import DeliveryFailed, Envelope

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def mock_cluster() -> Iterator[str]:
    """A three-broker mock cluster; it lives as long as the client that made it. Yields its bootstrap list."""
    owner = Producer({"test.mock.num.brokers": 3, "log_level": 3})
    metadata = owner.list_topics(timeout=10)
    bootstrap = ",".join(f"{broker.host}:{broker.port}" for broker in metadata.brokers.values())
    assert len(metadata.brokers) == 3
    yield bootstrap
    owner.flush(1)


@pytest.fixture
def kafka_settings(settings, mock_cluster: str):
    settings.TALIA_KAFKA_BOOTSTRAP_SERVERS = mock_cluster
    settings.TALIA_KAFKA_TOPIC = "talia-test-" + secrets.token_hex(4)
    settings.TALIA_KAFKA_TOPIC_PER_FAMILY = False
    settings.TALIA_KAFKA_PERSONAL = False
    settings.TALIA_KAFKA_TIMEOUT_S = 10.0
    settings.TALIA_KAFKA_CONFIG = {}
    yield settings
    for sink in kafka.kafka_sinks():
        sink.close()


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    key: str
    value: dict[str, Any]
    headers: dict[str, bytes]

    @classmethod
    def of(cls, message: Message) -> Record:
        headers = message.headers() or []
        pairs = headers.items() if isinstance(headers, dict) else headers
        return cls(
            topic=message.topic() or "",
            partition=message.partition() or 0,
            key=(message.key() or b"").decode(),
            value=json.loads(message.value() or b"null"),
            headers={name: value if isinstance(value, bytes) else str(value).encode() for name, value in pairs},
        )


def consume(bootstrap: str, topics: list[str], count: int, *, within_s: float = 20, **config: object) -> list[Record]:
    """Read `count` records from the beginning of `topics` (fewer if they do not come within `within_s`)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "talia-test-" + secrets.token_hex(4),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 3,
            **config,
        }
    )
    consumer.subscribe(topics)
    records: list[Record] = []
    deadline = time.monotonic() + within_s
    try:
        while len(records) < count and time.monotonic() < deadline:
            record = consumer.poll(0.5)
            if record is not None and record.error() is None:
                records.append(Record.of(record))
        # A moment more: nothing beyond what was expected may arrive.
        extra = consumer.poll(1.0)
        if extra is not None and extra.error() is None:
            records.append(Record.of(extra))
    finally:
        consumer.close()
    return records


def two_conversations() -> list[Event]:
    """Two web chats, each with a message, a reply and a handoff: real Event rows from the real flows."""
    for identity, name in (("session-kafka-ana-01", "Ana"), ("session-kafka-ben-01", "Ben")):
        received = inbox.receive("web", identity, f"Hola, soy {name}", locale="es", assistant_turn=False)
        with transaction.atomic():
            inbox.send(received.conversation, f"Hola {name}", sender=Sender.ASSISTANT)
        state.request_handoff(received.conversation, requested_by="contact", reason="quiero una persona")
    return list(Event.objects.order_by("id"))


def the_sink() -> kafka.KafkaSink:
    found = [sink for sink in sinks.enabled_sinks() if sink.key == "kafka"]
    assert len(found) == 1
    assert isinstance(found[0], kafka.KafkaSink)
    return found[0]


def test_no_sink_without_bootstrap_servers(settings) -> None:
    settings.TALIA_KAFKA_BOOTSTRAP_SERVERS = ""
    assert [sink for sink in sinks.enabled_sinks() if sink.key == "kafka"] == []


def test_events_reach_the_topic_keyed_and_in_order_per_conversation(kafka_settings) -> None:
    rows = two_conversations()
    sink = the_sink()
    assert sink.personal_data is False
    sent = envelopes.build(rows, personal_data=sink.personal_data)

    outcomes = sink.deliver_many(sent)

    assert outcomes == [None] * len(sent)
    records = consume(kafka_settings.TALIA_KAFKA_BOOTSTRAP_SERVERS, [kafka_settings.TALIA_KAFKA_TOPIC], len(sent))
    assert len(records) == len(sent)
    by_id = {envelope.id: envelope for envelope in sent}
    for record in records:
        value = record.value
        envelope = by_id[value["id"]]
        assert value == envelope.as_dict()
        assert "text" not in value["data"]  # personal fields stay out by default
        assert record.key == envelope.conversation_id
        assert record.headers == {
            "event_id": str(envelope.id).encode(),
            "event_type": envelope.type.encode(),
            "event_version": b"1",
        }
    # One conversation, one partition, in the order the events happened.
    for conversation_id in {envelope.conversation_id for envelope in sent}:
        mine = [r for r in records if r.key == conversation_id]
        assert len({r.partition for r in mine}) == 1
        assert [r.value["id"] for r in mine] == [e.id for e in sent if e.conversation_id == conversation_id]
        assert [r.value["type"] for r in mine] == [
            "conversation_opened",
            "message_received",
            "message_sent",
            "handoff_requested",
        ]


def test_per_family_topics_and_personal_data(kafka_settings) -> None:
    kafka_settings.TALIA_KAFKA_TOPIC_PER_FAMILY = True
    kafka_settings.TALIA_KAFKA_PERSONAL = True
    received = inbox.receive("web", "session-kafka-family-01", "Hola, soy Carla", locale="es", assistant_turn=False)
    rows = list(Event.objects.filter(conversation=received.conversation).order_by("id"))
    sink = the_sink()
    assert sink.personal_data is True
    sent = envelopes.build(rows, personal_data=True)

    assert sink.deliver_many(sent) == [None, None]

    prefix = kafka_settings.TALIA_KAFKA_TOPIC
    records = consume(kafka_settings.TALIA_KAFKA_BOOTSTRAP_SERVERS, [f"{prefix}.conversation", f"{prefix}.message"], 2)
    assert sorted((r.topic, r.value["type"]) for r in records) == [
        (f"{prefix}.conversation", "conversation_opened"),
        (f"{prefix}.message", "message_received"),
    ]
    message = next(r.value for r in records if r.topic == f"{prefix}.message")
    assert message["data"]["text"] == "Hola, soy Carla"


def test_a_refused_record_holds_back_the_rest_of_its_conversation_only(kafka_settings) -> None:
    # Records over 2,000 bytes are refused by the producer itself (librdkafka's message.max.bytes).
    kafka_settings.TALIA_KAFKA_CONFIG = {"message.max.bytes": 2000}
    kafka_settings.TALIA_KAFKA_PERSONAL = True
    long = inbox.receive("web", "session-kafka-long-01", "Hola", locale="es", assistant_turn=False)
    inbox.receive("web", "session-kafka-long-01", "x" * 5000, assistant_turn=False)
    inbox.receive("web", "session-kafka-long-01", "¿Sigues ahí?", assistant_turn=False)
    other = inbox.receive("web", "session-kafka-short-01", "Buenas", locale="es", assistant_turn=False)
    rows = list(Event.objects.order_by("id"))
    sent = envelopes.build(rows, personal_data=True)
    assert [(e.conversation_id, e.type) for e in sent] == [
        (str(long.conversation.pk), "conversation_opened"),
        (str(long.conversation.pk), "message_received"),
        (str(long.conversation.pk), "message_received"),
        (str(long.conversation.pk), "message_received"),
        (str(other.conversation.pk), "conversation_opened"),
        (str(other.conversation.pk), "message_received"),
    ]

    outcomes = the_sink().deliver_many(sent)

    assert [outcome is None for outcome in outcomes] == [True, True, False, False, True, True]
    assert isinstance(outcomes[2], DeliveryFailed) and "refused" in outcomes[2].reason
    assert isinstance(outcomes[3], DeliveryFailed) and "held back" in outcomes[3].reason
    records = consume(kafka_settings.TALIA_KAFKA_BOOTSTRAP_SERVERS, [kafka_settings.TALIA_KAFKA_TOPIC], 4)
    assert sorted(r.value["id"] for r in records) == sorted(sent[i].id for i in (0, 1, 4, 5))


def test_an_unreachable_cluster_fails_every_envelope_without_raising(kafka_settings) -> None:
    with socket.socket() as probe:  # a local port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kafka_settings.TALIA_KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{port}"
    kafka_settings.TALIA_KAFKA_TIMEOUT_S = 1.0
    two_conversations()
    sent = envelopes.build(list(Event.objects.order_by("id")), personal_data=False)
    sink = the_sink()

    outcomes = sink.deliver_many(sent)

    assert len(outcomes) == len(sent)
    assert all(isinstance(outcome, DeliveryFailed) for outcome in outcomes)
    with pytest.raises(DeliveryFailed):
        sink.deliver(sent[0])


def test_the_key_falls_back_to_the_contact_then_the_type() -> None:
    def envelope(conversation_id: str | None, contact_id: str | None) -> Envelope:
        return Envelope(1, "retention_applied", "2026-01-01T00:00:00Z", conversation_id, contact_id, None)

    assert kafka.record_key(envelope("c0nv", "c0nt")) == "c0nv"
    assert kafka.record_key(envelope(None, "c0nt")) == "c0nt"
    assert kafka.record_key(envelope(None, None)) == "retention_applied"
    assert kafka.family("message_received") == "message"
    assert kafka.family("routed") == "routed"


def test_the_producer_is_idempotent_whatever_the_extra_config_says() -> None:
    config = kafka.KafkaSettings(
        "broker:9092", extra=(("acks", "1"), ("enable.idempotence", False), ("sasl.password", "s3cret"))
    )
    produced = config.producer_config()
    assert (produced["acks"], produced["enable.idempotence"]) == ("all", True)
    assert produced["sasl.password"] == "s3cret"
    assert produced["bootstrap.servers"] == "broker:9092"


@pytest.mark.skipif(
    not os.environ.get("TALIA_TEST_KAFKA_BOOTSTRAP"),
    reason="no real Kafka broker: set TALIA_TEST_KAFKA_BOOTSTRAP=host:port to run this against one",
)
def test_against_a_real_broker(settings) -> None:
    bootstrap = os.environ["TALIA_TEST_KAFKA_BOOTSTRAP"]
    settings.TALIA_KAFKA_BOOTSTRAP_SERVERS = bootstrap
    settings.TALIA_KAFKA_TOPIC = "talia-test-" + secrets.token_hex(4)
    settings.TALIA_KAFKA_TOPIC_PER_FAMILY = False
    settings.TALIA_KAFKA_PERSONAL = False
    settings.TALIA_KAFKA_TIMEOUT_S = 15.0
    settings.TALIA_KAFKA_CONFIG = json.loads(os.environ.get("TALIA_TEST_KAFKA_CONFIG", "{}"))
    rows = two_conversations()
    sink = the_sink()
    try:
        sent = envelopes.build(rows, personal_data=False)
        assert sink.deliver_many(sent) == [None] * len(sent)
        records = consume(
            bootstrap, [settings.TALIA_KAFKA_TOPIC], len(sent), within_s=30, **settings.TALIA_KAFKA_CONFIG
        )
        assert sorted(r.value["id"] for r in records) == sorted(e.id for e in sent)
    finally:
        sink.close()


def test_the_documented_topic_of_every_event_family() -> None:
    """docs/kafka.md lists every declared event type under the topic it goes to."""
    from conversations.events import events

    text = (BASE_DIR / "docs" / "kafka.md").read_text(encoding="utf-8")
    documented = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`talia.events."):
            for name in cells[2].replace("`", "").split(", "):
                documented[name] = cells[1].strip("`")
    assert documented == {event.name: f"talia.events.{kafka.family(event.name)}" for event in events.all()}


def test_a_cluster_that_goes_away_fails_the_next_batch_and_the_password_is_never_logged(
    kafka_settings, caplog: pytest.LogCaptureFixture
) -> None:
    owner = Producer({"test.mock.num.brokers": 1, "log_level": 3})
    broker = next(iter(owner.list_topics(timeout=10).brokers.values()))
    kafka_settings.TALIA_KAFKA_BOOTSTRAP_SERVERS = f"{broker.host}:{broker.port}"
    kafka_settings.TALIA_KAFKA_TIMEOUT_S = 2.0
    kafka_settings.TALIA_KAFKA_CONFIG = {"sasl.username": "talia", "sasl.password": "pa55-never-logged"}
    received = inbox.receive("web", "session-kafka-gone-01", "Hola", locale="es", assistant_turn=False)
    sink = the_sink()
    first = envelopes.build(list(Event.objects.order_by("id")), personal_data=False)
    assert sink.deliver_many(first) == [None, None]

    owner.close()  # the cluster lives in this client: closing it stops its broker
    del owner
    inbox.receive("web", "session-kafka-gone-01", "¿Hola?", assistant_turn=False)
    later = envelopes.build(list(Event.objects.filter(pk__gt=first[-1].id).order_by("id")), personal_data=False)
    with caplog.at_level("DEBUG", logger="talia.integrations.kafka"):
        outcomes = the_sink().deliver_many(later)

    assert [e.conversation_id for e in later] == [str(received.conversation.pk)]
    assert [type(outcome) for outcome in outcomes] == [DeliveryFailed]
    assert caplog.records  # librdkafka did report the broker's absence through the logger
    assert "pa55-never-logged" not in caplog.text


def test_the_publisher_hands_every_event_to_kafka_once_in_order(kafka_settings, no_stream) -> None:
    # End to end: events recorded by the real flows, claimed and delivered by the real publisher.
    from talia.integrations.models import DeliveryStatus, EventDelivery
    from talia.integrations.tests.helpers import publish_until_settled

    rows = two_conversations()

    publish_until_settled()

    deliveries = EventDelivery.objects.filter(sink_key="kafka")
    assert sorted(deliveries.values_list("event_id", flat=True)) == [row.pk for row in rows]
    assert set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    records = consume(kafka_settings.TALIA_KAFKA_BOOTSTRAP_SERVERS, [kafka_settings.TALIA_KAFKA_TOPIC], len(rows))
    assert sorted(record.value["id"] for record in records) == [row.pk for row in rows]
    for conversation_id in {str(row.conversation_id) for row in rows}:
        mine = [record.value["id"] for record in records if record.key == conversation_id]
        assert mine == sorted(mine)
