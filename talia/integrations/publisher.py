"""The event outbox publisher: every Event handed to every enabled sink, never lost, never doubled per sink.

One pass (`run_pass`):
(a) claim: in one transaction, the oldest unpublished events (`published_at IS NULL`, id order, `FOR
    UPDATE SKIP LOCKED`, so two publishers never claim the same event) get one pending `EventDelivery` per
    sink enabled now that accepts their type, and `published_at`. An event is claimed exactly once; what
    each sink is owed is then a row.
(b) deliver: for each enabled sink, its due pending deliveries in event-id order, batched
    (`Sink.deliver_many`), then marked delivered or failed. Per conversation and sink, an event is never
    handed over while an earlier delivery of the same conversation waits for a retry (or its event is not
    yet claimed); a dead delivery no longer holds the conversation back.
Invariants:
- At least once: a delivery is marked after the sink took it. A publisher killed in between hands the
  event over again on its next pass, in the same envelope (same id: consumers deduplicate on it).
- No row lock and no transaction is held across a sink's network call. A sink is delivered to by one
  publisher at a time (a Postgres advisory lock per sink key, held for the sink's part of the pass).
- A failure counts one attempt and schedules the next with exponential backoff and jitter
  (`backoff_s`); after TALIA_EVENTS_MAX_ATTEMPTS the delivery is dead (last error kept, replayable in the
  admin). Deliveries that failed only because an earlier one in the same batch failed (the same error
  object: `Sink.deliver_many` stops at the first failure) are "held back": no attempt is counted, they
  wait as long as the one that failed.
- A failing sink holds back only itself: other sinks' deliveries are separate rows.
- A sink removed or disabled after its deliveries were recorded is not asked for: its pending deliveries
  stay pending (visible in the admin) until it is enabled again or they are deleted.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from conversations.models import Event
from talia.integrations import envelopes as envelope_builder
from talia.integrations.models import DeliveryStatus, EventDelivery
from talia.integrations.sinks import DeliveryFailed, Envelope, Sink, enabled_sinks

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 2000


@dataclass
class PassResult:
    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    # Whether a batch was full: the caller runs the next pass at once instead of sleeping.
    more: bool = False
    sinks: list[Sink] = field(default_factory=list)

    def add(self, other: PassResult) -> None:
        self.claimed += other.claimed
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead += other.dead


def backoff_s(attempts: int) -> float:
    """The wait after the `attempts`-th failure: base × 2^(attempts-1), capped, minus up to 20 % jitter.

    The jitter spreads retries of many deliveries that failed together; kept under 20 % so each wait is
    still longer than the one before (until the cap).
    """
    base = float(settings.TALIA_EVENTS_RETRY_BASE_S)
    delay = min(float(settings.TALIA_EVENTS_RETRY_MAX_S), base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.0)  # noqa: S311 (jitter, not a secret)


def claim(batch_size: int, sinks: Sequence[Sink], now: datetime | None = None) -> int:
    """Step (a): the oldest unpublished events become pending deliveries, one per accepting sink."""
    with transaction.atomic():
        events = list(
            Event.objects.filter(published_at__isnull=True)
            .order_by("id")
            .select_for_update(skip_locked=True)
            .only("id", "name", "conversation_id")[:batch_size]
        )
        if not events:
            return 0
        rows = [
            EventDelivery(
                event_id=event.pk,
                sink_key=sink.key,
                conversation_id=event.conversation_id,
                next_attempt_at=now or timezone.now(),
            )
            for event in events
            for sink in sinks
            if sink.accepts(event.name)
        ]
        EventDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        Event.objects.filter(pk__in=[event.pk for event in events]).update(published_at=timezone.now())
    return len(events)


def due_deliveries(sink_key: str, now: datetime, limit: int) -> list[EventDelivery]:
    """A sink's pending deliveries that may go now, in event-id order (see the module docstring)."""
    waiting_earlier = EventDelivery.objects.filter(
        sink_key=sink_key,
        status=DeliveryStatus.PENDING,
        conversation_id=OuterRef("conversation_id"),
        event_id__lt=OuterRef("event_id"),
        next_attempt_at__gt=now,
    )
    unclaimed_earlier = Event.objects.filter(
        published_at__isnull=True, conversation_id=OuterRef("conversation_id"), id__lt=OuterRef("event_id")
    )
    return list(
        EventDelivery.objects.filter(sink_key=sink_key, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .exclude(Exists(waiting_earlier))
        .exclude(Exists(unclaimed_earlier))
        .order_by("event_id")[:limit]
    )


def deliver_to(sink: Sink, now: datetime, batch_size: int) -> PassResult:
    """Step (b) for one sink: hand over its due deliveries and record the outcomes."""
    result = PassResult()
    if not _try_lock(sink.key):
        return result  # another publisher is delivering to this sink right now
    try:
        deliveries = due_deliveries(sink.key, now, batch_size)
        if not deliveries:
            return result
        result.more = len(deliveries) == batch_size
        events = {
            event.pk: event
            for event in envelope_builder.with_channel(Event.objects.filter(pk__in=[d.event_id for d in deliveries]))
        }
        envelopes = envelope_builder.build([events[d.event_id] for d in deliveries], personal_data=sink.personal_data)
        try:
            outcomes: Sequence[Exception | int | None] = sink.deliver_many(envelopes)
            if len(outcomes) != len(envelopes):
                raise RuntimeError(
                    f"{type(sink).__name__}.deliver_many gave {len(outcomes)} outcomes for {len(envelopes)} events"
                )
        except Exception as error:  # noqa: BLE001 - a sink's own bug fails its deliveries, never the publisher
            outcomes = [error] * len(envelopes)
        _record(sink, deliveries, envelopes, outcomes, now, result)
    finally:
        _unlock(sink.key)
    return result


def _record(
    sink: Sink,
    deliveries: list[EventDelivery],
    envelopes: list[Envelope],
    outcomes: Sequence[Exception | int | None],
    now: datetime,
    result: PassResult,
) -> None:
    delivered_at = timezone.now()
    delivered_by_code: dict[int | None, list[int]] = {}
    first_failures: dict[int, datetime] = {}  # id(error) -> when the delivery that raised it is retried
    max_attempts = settings.TALIA_EVENTS_MAX_ATTEMPTS
    for delivery, envelope, outcome in zip(deliveries, envelopes, outcomes, strict=True):
        if not isinstance(outcome, BaseException):
            delivered_by_code.setdefault(outcome, []).append(delivery.pk)
            continue
        reason = outcome.reason if isinstance(outcome, DeliveryFailed) else f"{type(outcome).__name__}: {outcome}"
        status_code = outcome.status_code if isinstance(outcome, DeliveryFailed) else None
        if id(outcome) in first_failures:
            # Not tried: an earlier event of this batch failed with this very error. No attempt counted.
            EventDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
                next_attempt_at=first_failures[id(outcome)],
                last_error=f"Held back: {reason}"[:MAX_ERROR_LENGTH],
            )
            continue
        attempts = delivery.attempts + 1
        retry_at = now + timedelta(seconds=backoff_s(attempts))
        first_failures[id(outcome)] = retry_at
        dead = attempts >= max_attempts
        EventDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
            attempts=attempts,
            status=DeliveryStatus.DEAD if dead else DeliveryStatus.PENDING,
            next_attempt_at=retry_at,
            last_error=reason[:MAX_ERROR_LENGTH],
            last_status_code=status_code,
        )
        result.failed += 1
        result.dead += dead
        logger.warning(
            "Event %s (%s) to %s failed, attempt %d of %d%s: %s",
            envelope.id,
            envelope.type,
            sink.key,
            attempts,
            max_attempts,
            " (dead)" if dead else "",
            reason,
        )
    for code, ids in delivered_by_code.items():
        result.delivered += EventDelivery.objects.filter(pk__in=ids, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.DELIVERED,
            delivered_at=delivered_at,
            attempts=F("attempts") + 1,
            last_status_code=code,
            last_error="",
        )


def run_pass(*, now: datetime | None = None, batch_size: int | None = None) -> PassResult:
    """One publishing pass: claim new events, then deliver what is due to each enabled sink.

    `now` decides what is due and where the backoff counts from (tests move it forward instead of sleeping).
    """
    size = batch_size or settings.TALIA_EVENTS_BATCH_SIZE
    sinks = enabled_sinks()
    moment = now or timezone.now()
    result = PassResult(sinks=sinks)
    result.claimed = claim(size, sinks, moment)
    result.more = result.claimed == size
    for sink in sinks:
        outcome = deliver_to(sink, moment, size)
        result.add(outcome)
        result.more = result.more or outcome.more
    return result


def replay(deliveries: QuerySet[EventDelivery]) -> int:
    """Dead or delivered deliveries pending again, due now, attempts reset (the admin's "Replay")."""
    return deliveries.filter(status__in=[DeliveryStatus.DEAD, DeliveryStatus.DELIVERED]).update(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        last_error="",
        delivered_at=None,
    )


def _lock_id(sink_key: str) -> int:
    digest = hashlib.blake2b(f"talia.events:{sink_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _try_lock(sink_key: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_lock_id(sink_key)])
        return bool(cursor.fetchone()[0])


def _unlock(sink_key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_id(sink_key)])
