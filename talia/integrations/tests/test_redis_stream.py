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


@pytest.fixture
def redis_proxy(settings):
    """The session's Redis behind a proxy the test can make hang or refuse (talia.testing.faults), and the
    URL that reaches the same database through it."""
    from urllib.parse import parse_qs, urlsplit

    from talia.testing.faults import FaultProxy

    url = urlsplit(settings.REDIS_URL)
    if url.scheme == "unix":
        proxy, number = FaultProxy(unix_path=url.path), parse_qs(url.query).get("db", ["0"])[0]
    else:
        proxy, number = FaultProxy(target=(url.hostname or "127.0.0.1", url.port or 6379)), url.path.strip("/")
    with proxy:
        yield proxy, f"redis://127.0.0.1:{proxy.port}/{number or 0}"


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["hang", "refuse"])
def test_a_redis_that_hangs_or_is_down_delays_the_stream_only_and_loses_nothing(
    receiver, stream, redis_proxy, settings, fault
):
    from talia.integrations.models import WebhookEndpoint
    from talia.integrations.tests.helpers import publish_until_settled, stream_envelopes

    endpoint = WebhookEndpoint.objects.create(url=receiver.url)
    for i in range(3):
        visitor_says(f"session-redis-fault-{i:04d}")
    # From here on the publisher reaches Redis through the proxy (its timeouts: TALIA_REDIS_TIMEOUT_S).
    proxy, proxied_url = redis_proxy
    direct_url, settings.REDIS_URL = settings.REDIS_URL, proxied_url
    settings.TALIA_REDIS_TIMEOUT_S = 0.5
    getattr(proxy, fault)()

    publisher.run_pass()

    stream_rows = EventDelivery.objects.filter(sink_key="redis-stream")
    assert stream_rows.count() == 6 and not stream_rows.filter(status="delivered").exists()
    failed = stream_rows.exclude(attempts=0).get()  # one attempt: the batch's later events held back
    assert failed.last_error and failed.next_attempt_at > failed.created
    # The webhook got every event meanwhile.
    assert EventDelivery.objects.filter(sink_key=endpoint.sink_key, status="delivered").count() == 6

    proxy.forward()
    publish_until_settled()

    assert stream_rows.filter(status="delivered").count() == 6
    settings.REDIS_URL = direct_url
    envelopes = stream_envelopes(stream)
    assert sorted(envelope["id"] for envelope in envelopes) == sorted(stream_rows.values_list("event_id", flat=True))
