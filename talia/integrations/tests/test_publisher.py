"""The outbox publisher on the real stack: every event claimed once and owed to each sink, retries that
never hold back another sink, dead deliveries replayed from the admin, order per conversation under
concurrency, and a publisher process killed between send and mark."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from conversations.models import Event
from talia.env import BASE_DIR
from talia.integrations import publisher
from talia.integrations.models import DeliveryStatus, EventDelivery, WebhookEndpoint
from talia.integrations.tests.helpers import publish_until_settled, stream_envelopes, visitor_says
from talia.testing.browser import server_env
from talia.testing.plugin import wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.mark.django_db
def test_each_event_is_claimed_once_and_owed_to_each_accepting_sink(receiver, stream):
    everything = WebhookEndpoint.objects.create(url=receiver.url)
    messages_only = WebhookEndpoint.objects.create(url=receiver.url, event_types="message_received")
    WebhookEndpoint.objects.create(url=receiver.url, active=False)
    visitor_says("session-claim-0001")

    first = publisher.run_pass()
    second = publisher.run_pass()

    assert (first.claimed, second.claimed) == (2, 0)
    assert not Event.objects.filter(published_at__isnull=True).exists()
    owed = sorted(EventDelivery.objects.values_list("sink_key", "event__name"))
    assert owed == sorted(
        [
            ("redis-stream", "conversation_opened"),
            ("redis-stream", "message_received"),
            (everything.sink_key, "conversation_opened"),
            (everything.sink_key, "message_received"),
            (messages_only.sink_key, "message_received"),
        ]
    )
    assert set(EventDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert len(receiver.requests) == 3
    assert [e["type"] for e in stream_envelopes(stream)] == ["conversation_opened", "message_received"]


@pytest.mark.django_db
def test_events_recorded_before_the_migration_count_as_published():
    """The migration's UPDATE, replayed: rows without published_at get it, so history is not re-sent."""
    visitor_says("session-history-0001")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE conversations_event SET published_at = now() WHERE published_at IS NULL")
    assert publisher.run_pass().claimed == 0


@pytest.mark.django_db
def test_a_failing_webhook_does_not_hold_back_the_redis_stream(receiver, stream):
    endpoint = WebhookEndpoint.objects.create(url=receiver.url)
    receiver.statuses[:] = [500] * 100
    for i in range(3):
        visitor_says(f"session-failing-{i:04d}")

    publisher.run_pass()

    assert len(stream_envelopes(stream)) == 6
    assert EventDelivery.objects.filter(sink_key="redis-stream", status="delivered").count() == 6
    webhook = EventDelivery.objects.filter(sink_key=endpoint.sink_key)
    assert webhook.count() == 6 and not webhook.filter(status="delivered").exists()
    # One real attempt per conversation: the conversation's second event was held back, not tried.
    assert len(receiver.requests) == 3
    assert sorted(webhook.values_list("attempts", flat=True)) == [0, 0, 0, 1, 1, 1]


@pytest.mark.django_db
def test_dead_after_max_attempts_then_replayed_from_the_admin(receiver, no_stream, settings, admin_client):
    settings.TALIA_EVENTS_MAX_ATTEMPTS = 3
    endpoint = WebhookEndpoint.objects.create(url=receiver.url, event_types="conversation_opened")
    receiver.statuses[:] = [502] * 3
    visitor_says("session-dead-0001")
    conversation_later = visitor_says("session-dead-0001", "¿Hay alguien?")  # same conversation, no new opening

    now = publish_until_settled()

    delivery = EventDelivery.objects.get(sink_key=endpoint.sink_key)
    assert (delivery.status, delivery.attempts, delivery.last_error, delivery.last_status_code) == (
        "dead",
        3,
        "HTTP 502",
        502,
    )
    assert len(receiver.requests) == 3
    assert conversation_later.pk == delivery.conversation_id
    changelist = reverse("admin:integrations_eventdelivery_changelist")
    listed = admin_client.get(changelist, {"status": "dead"})
    assert str(delivery.event_id) in listed.content.decode()

    response = admin_client.post(changelist, {"action": "replay", "_selected_action": [delivery.pk]}, follow=True)
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)

    publish_until_settled(start=max(now, timezone.now()))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert len(receiver.requests) == 4
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(delivery.event_id)}


@pytest.mark.django_db
def test_a_dead_delivery_no_longer_holds_back_its_conversation(receiver, no_stream, settings):
    settings.TALIA_EVENTS_MAX_ATTEMPTS = 2
    WebhookEndpoint.objects.create(url=receiver.url)
    receiver.statuses[:] = [500, 500]
    visitor_says("session-unblock-0001")

    publish_until_settled()

    statuses = dict(EventDelivery.objects.values_list("event__name", "status"))
    assert statuses == {"conversation_opened": "dead", "message_received": "delivered"}
    assert [r.envelope["type"] for r in receiver.requests] == ["conversation_opened"] * 2 + ["message_received"]


@pytest.mark.django_db(transaction=True)
def test_order_per_conversation_under_20_concurrent_conversations(receiver, stream):
    WebhookEndpoint.objects.create(url=receiver.url)
    per_conversation = 5
    errors: list[BaseException] = []
    stop = threading.Event()
    passes: list[publisher.PassResult] = []

    def visitor(n: int) -> None:
        try:
            for i in range(per_conversation):
                visitor_says(f"session-order-{n:04d}", f"message {i}")
        except BaseException as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connection.close()

    def publishing() -> None:
        try:
            while not stop.is_set():
                passes.append(publisher.run_pass(batch_size=7))
        finally:
            connection.close()

    worker = threading.Thread(target=publishing)
    worker.start()
    visitors = [threading.Thread(target=visitor, args=(n,)) for n in range(20)]
    for thread in visitors:
        thread.start()
    for thread in visitors:
        thread.join()
    stop.set()
    worker.join()
    assert errors == []
    publish_until_settled()

    expected = Event.objects.count()
    assert expected == 20 * (per_conversation + 1)
    assert EventDelivery.objects.filter(status="delivered").count() == 2 * expected
    for name, delivered in (("webhook", receiver.envelopes()), ("redis", stream_envelopes(stream))):
        assert sorted(e["id"] for e in delivered) == sorted(Event.objects.values_list("id", flat=True)), name
        ids: dict[str, list[int]] = defaultdict(list)
        for envelope in delivered:
            ids[envelope["conversation_id"]].append(envelope["id"])
        assert len(ids) == 20
        for conversation, sequence in ids.items():
            assert sequence == sorted(sequence), (name, conversation)


@pytest.mark.django_db(transaction=True)
def test_publisher_killed_between_send_and_mark_delivers_again_with_the_same_id(
    receiver, no_stream, settings, tmp_path: Path
):
    WebhookEndpoint.objects.create(url=receiver.url)
    receiver.delay_s = 30  # the first answer comes too late: the process is killed while waiting for it
    visitor_says("session-killed-0001")
    env = server_env(settings, connection.settings_dict)
    env.update(TALIA_EVENTS_REDIS_STREAM="off", TALIA_EVENTS_POLL_S="0.1")
    log = tmp_path / "publisher.log"

    def start() -> subprocess.Popen[bytes]:
        with open(log, "ab") as output:
            return subprocess.Popen(
                [sys.executable, "manage.py", "publish_events"],
                cwd=BASE_DIR,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    process = start()
    try:
        wait_for(lambda: receiver.requests, timeout=60)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert set(EventDelivery.objects.values_list("status", flat=True)) == {"pending"}
        receiver.delay_s = 0

        process = start()
        wait_for(lambda: EventDelivery.objects.filter(status="delivered").count() == 2, timeout=60)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        print(log.read_text(errors="replace")[-3000:])

    assert process.returncode == 0
    first_id = receiver.requests[0].headers["webhook-id"]
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids.count(first_id) == 2  # sent, killed before marked, sent again: the same id
    delivered = sorted(int(i) for i in set(ids))
    assert delivered == sorted(Event.objects.values_list("id", flat=True))
    assert "Publisher stopped" in log.read_text()


@pytest.mark.django_db
def test_pending_deliveries_of_a_removed_sink_stay_pending(receiver, no_stream):
    endpoint = WebhookEndpoint.objects.create(url=receiver.url)
    receiver.statuses[:] = [500]
    visitor_says("session-removed-0001")
    publisher.run_pass()
    endpoint.active = False
    endpoint.save()

    publisher.run_pass(now=timezone.now() + timedelta(hours=1))

    assert set(EventDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PENDING}
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_a_pass_costs_the_same_queries_for_few_or_many_events(receiver, stream):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    WebhookEndpoint.objects.create(url=receiver.url)

    def queries_for(conversations: int, tag: str) -> int:
        for i in range(conversations):
            visitor_says(f"session-queries-{tag}-{i:04d}")
        with CaptureQueriesContext(db) as captured:
            result = publisher.run_pass()
        assert result.delivered == 2 * 2 * conversations
        return len(captured.captured_queries)

    assert queries_for(1, "few") == queries_for(15, "many")


@pytest.mark.django_db
@pytest.mark.parametrize("enabled", [True, False])
def test_publish_events_command_follows_the_switch(stream, settings, enabled):
    from django.core.management import call_command

    settings.TALIA_EVENTS_ENABLED = enabled
    visitor_says("session-switch-0001")

    call_command("publish_events", "--once")

    assert Event.objects.filter(published_at__isnull=True).exists() is not enabled
    assert len(stream_envelopes(stream)) == (2 if enabled else 0)
