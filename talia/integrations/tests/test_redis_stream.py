"""The Redis Streams sink on the real Redis: entries a consumer group reads in full, bounded length,
personal data only when configured, and the switch that turns it off."""

from __future__ import annotations

import json
from typing import cast

import pytest

from talia.integrations import publisher
from talia.integrations.models import EventDelivery
from talia.integrations.tests.helpers import stream_entries, visitor_says
from talia.redis_client import get_redis

pytestmark = pytest.mark.django_db


def test_a_consumer_group_reads_every_event(stream):
    redis = get_redis()
    redis.xgroup_create(stream, "crm", id="$", mkstream=True)
    for i in range(4):
        visitor_says(f"session-group-{i:04d}", "Hola")
        visitor_says(f"session-group-{i:04d}", "¿Seguís ahí?")
    publisher.run_pass()

    read: list[dict] = []
    while entries := cast(list, redis.xreadgroup("crm", "consumer-1", {stream: ">"}, count=5, block=100)):
        for _, messages in entries:
            for entry_id, fields in messages:
                envelope = json.loads(fields[b"envelope"])
                assert fields[b"id"].decode() == str(envelope["id"])
                assert fields[b"type"].decode() == envelope["type"]
                assert fields[b"conversation_id"].decode() == envelope["conversation_id"]
                read.append(envelope)
                redis.xack(stream, "crm", entry_id)

    delivered = EventDelivery.objects.filter(sink_key="redis-stream", status="delivered")
    assert sorted(e["id"] for e in read) == sorted(delivered.values_list("event_id", flat=True))
    assert len(read) == 4 * 3  # opened, two messages received
    assert redis.xpending(stream, "crm")["pending"] == 0


def test_the_stream_is_trimmed_to_about_its_maximum_length(stream, settings):
    settings.TALIA_EVENTS_REDIS_STREAM_MAXLEN = 10
    for i in range(60):
        visitor_says(f"session-trim-{i:04d}")
    publisher.run_pass(batch_size=500)

    assert EventDelivery.objects.filter(sink_key="redis-stream", status="delivered").count() == 120
    assert get_redis().xlen(stream) < 120  # approximate trimming (MAXLEN ~) keeps whole nodes


@pytest.mark.parametrize("personal", [False, True])
def test_message_text_only_with_personal_data(stream, settings, personal):
    settings.TALIA_EVENTS_REDIS_PERSONAL = personal
    visitor_says("session-stream-personal-0001", "Mi correo es ana@example.com")
    publisher.run_pass()

    raw = b"".join(fields[b"envelope"] for _, fields in stream_entries(stream)).decode()
    assert ("ana@example.com" in raw) is personal
    message = next(json.loads(f[b"envelope"]) for _, f in stream_entries(stream) if f[b"type"] == b"message_received")
    assert ("text" in message["data"]) is personal


def test_an_empty_stream_name_turns_the_sink_off(no_stream):
    visitor_says("session-stream-off-0001")
    assert publisher.run_pass().claimed == 2
    assert not EventDelivery.objects.exists()
