"""Data retention: what was said in old conversations is cleared, what happened is kept (TALIA_RETENTION_DAYS).

A conversation closed more than TALIA_RETENTION_DAYS days ago is anonymised: its message texts, files,
call recordings, summaries, handoff reasons and briefs, internal notes, tool call arguments and outputs
and the personal values of its events are cleared. Rows are never deleted, and what the KPIs count is
never touched (senders, timestamps, seq, statuses, stages, values, durations, scores), so the dashboard
shows the same figures before and after. A contact's own details (names, email, phone, company, channel
identities, web sessions' addresses and browsers, lead card texts) are cleared only once none of its
conversations is open or recent any more, and the contact itself is that old.

Invariants:
- One service, `apply_retention()`, behind both the nightly beat task and `manage.py apply_retention`.
- Batches of BATCH rows, each in its own transaction with the rows locked (`skip_locked`, so two runs
  never work on the same batch); `anonymised_at` is set in the same transaction. An interrupted run loses
  at most its current batch's work, which the next run does again: every step is idempotent.
- Stored files (attachments, encrypted recordings) are deleted inside the batch's transaction, before the
  commit: a rolled-back batch may have lost files whose rows still name them, never the reverse (a cleared
  row whose personal file stays on disk).
- The core never names the other apps: each app registers a `RetentionPart` in its AppConfig.ready()
  clearing its own tables (channels_web, channels_voice, leads).
- One `retention_applied` event per run that changed something, with counts only.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from conversations import events
from conversations.models import (
    AssistantRun,
    Contact,
    ContactIdentity,
    Conversation,
    ConversationRating,
    ConversationStatus,
    ConversationSummary,
    Event,
    HandoffRequest,
    InternalNote,
    Message,
    ToolCall,
)

logger = logging.getLogger("talia.retention")

BATCH = 500
# Message metadata that says something about the person: where they were, what they pressed or quoted.
PERSONAL_MESSAGE_KEYS = ("geolocation", "location", "button", "in_reply_to")
# An anonymised identity's value: still unique per channel, and no longer anyone's id, number or address.
ANONYMOUS = "anonymised:"
# Event payload values that are personal, by event name (the keys stay, so payloads still match their
# declarations). Apps add theirs with `personal_event_keys()`.
PERSONAL_EVENT_KEYS: dict[str, tuple[str, ...]] = {
    events.LEAD_CAPTURED.name: ("full_name", "email", "phone", "company"),
    events.HANDOFF_REQUESTED.name: ("reason",),
    events.CONVERSATION_CLOSED.name: ("reason",),
}

RETENTION_APPLIED = events.spec(
    "retention_applied",
    "Old conversations anonymised (retention)",
    "days",
    "conversations",
    "contacts",
    "messages",
    "files",
)

Counts = Counter[str]
Scrub = Callable[[list[UUID]], Iterable[tuple[str, int]]]


@dataclass(frozen=True)
class RetentionPart:
    """How one app clears its own rows: `conversations(ids)` for conversations being anonymised,
    `contacts(ids)` for contacts being anonymised. Each returns (what, how many) pairs for the log and
    runs inside the batch's transaction."""

    name: str
    conversations: Scrub
    contacts: Scrub


class RetentionRegistry:
    def __init__(self) -> None:
        self._parts: dict[str, RetentionPart] = {}

    def register(self, part: RetentionPart) -> RetentionPart:
        self._parts[part.name] = part
        return part

    def all(self) -> list[RetentionPart]:
        return list(self._parts.values())


parts = RetentionRegistry()


@dataclass(frozen=True)
class Outcome:
    """What a run did (or, dry, would do): conversations and contacts anonymised, and the detail."""

    days: int
    cutoff: datetime | None
    dry_run: bool
    conversations: int
    contacts: int
    detail: dict[str, int]

    @property
    def enabled(self) -> bool:
        return self.cutoff is not None


def apply_retention(*, days: int | None = None, dry_run: bool = False, now: datetime | None = None) -> Outcome:
    """Anonymise what is older than `days` (default TALIA_RETENTION_DAYS; 0: off, nothing happens)."""
    days = settings.TALIA_RETENTION_DAYS if days is None else days
    if days <= 0:
        return Outcome(days, None, dry_run, 0, 0, {})
    cutoff = (now or timezone.now()) - timedelta(days=days)
    if dry_run:
        conversations = due_conversations(cutoff).count()
        # Contacts whose every conversation is due or done (and who are old enough themselves).
        contacts = _contacts_due(cutoff, counting_due=True).count()
        return Outcome(days, cutoff, True, conversations, contacts, {})
    detail: Counts = Counter()
    while batch := _conversation_batch(cutoff, detail):
        logger.info("Retention: %d conversations anonymised", batch)
    while batch := _contact_batch(cutoff, detail):
        logger.info("Retention: %d contacts anonymised", batch)
    outcome = Outcome(days, cutoff, False, detail["conversations"], detail["contacts"], dict(sorted(detail.items())))
    if outcome.conversations or outcome.contacts:
        events.emit(
            RETENTION_APPLIED,
            days=days,
            conversations=outcome.conversations,
            contacts=outcome.contacts,
            messages=detail["messages"],
            files=detail["attachments"] + detail["recordings"],
        )
    logger.info(
        "Retention (%d days, closed before %s): %s",
        days,
        cutoff.isoformat(),
        ", ".join(f"{name} {count}" for name, count in outcome.detail.items()) or "nothing to do",
    )
    return outcome


def due_conversations(cutoff: datetime) -> Any:
    return Conversation.objects.filter(
        status=ConversationStatus.CLOSED, closed_at__lt=cutoff, anonymised_at__isnull=True
    )


def _contacts_due(cutoff: datetime, *, counting_due: bool = False) -> Any:
    """Contacts not anonymised, created before the cutoff, with no conversation that must stay: every one
    is anonymised (or, for a dry run's count, due)."""
    kept = Conversation.objects.filter(contact=OuterRef("pk"))
    if counting_due:
        kept = kept.exclude(status=ConversationStatus.CLOSED, closed_at__lt=cutoff)
    else:
        kept = kept.filter(anonymised_at__isnull=True)
    return Contact.objects.filter(anonymised_at__isnull=True, created__lt=cutoff).exclude(Exists(kept))


def _conversation_batch(cutoff: datetime, detail: Counts) -> int:
    with transaction.atomic():
        ids = list(
            due_conversations(cutoff)
            .order_by("closed_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return 0
        detail.update(dict(scrub_conversations(ids)))
        for part in parts.all():
            detail.update(dict(part.conversations(ids)))
        Conversation.objects.filter(pk__in=ids).update(anonymised_at=timezone.now())
        detail["conversations"] += len(ids)
    return len(ids)


def _contact_batch(cutoff: datetime, detail: Counts) -> int:
    with transaction.atomic():
        ids = list(
            _contacts_due(cutoff)
            .order_by("created")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return 0
        detail.update(dict(scrub_contacts(ids)))
        for part in parts.all():
            detail.update(dict(part.contacts(ids)))
        Contact.objects.filter(pk__in=ids).update(anonymised_at=timezone.now())
        detail["contacts"] += len(ids)
    return len(ids)


# --- The core's own tables ---------------------------------------------------------------------------


def scrub_conversations(ids: list[UUID]) -> Iterable[tuple[str, int]]:
    messages = Message.objects.filter(conversation_id__in=ids)
    yield "messages", messages.exclude(text="").update(text="")
    yield "attachments", _scrub_message_metadata(messages)
    yield (
        "handoff_reasons",
        (
            HandoffRequest.objects.filter(conversation_id__in=ids)
            .exclude(reason="", brief_summary="", brief_topics=[])
            .update(reason="", brief_summary="", brief_topics=[])
        ),
    )
    yield "notes", InternalNote.objects.filter(conversation_id__in=ids).exclude(text="").update(text="")
    yield (
        "summaries",
        (
            ConversationSummary.objects.filter(conversation_id__in=ids)
            .exclude(summary="", topics=[])
            .update(summary="", topics=[])
        ),
    )
    yield (
        "rating_comments",
        (ConversationRating.objects.filter(conversation_id__in=ids).exclude(comment="").update(comment="")),
    )
    runs = AssistantRun.objects.filter(conversation_id__in=ids)
    yield (
        "tool_calls",
        (ToolCall.objects.filter(run__in=runs).exclude(arguments={}, output={}).update(arguments={}, output={})),
    )
    yield "assistant_errors", runs.exclude(error="").update(error="")
    yield "events", clear_event_values(Q(conversation_id__in=ids), PERSONAL_EVENT_KEYS)


def scrub_contacts(ids: list[UUID]) -> Iterable[tuple[str, int]]:
    contacts = Contact.objects.filter(pk__in=ids)
    yield "contact_fields", contacts.update(display_name="", full_name="", email="", phone="", company="", metadata={})
    identities = list(ContactIdentity.objects.filter(contact_id__in=ids).exclude(value__startswith=ANONYMOUS))
    for identity in identities:
        identity.value = f"{ANONYMOUS}{identity.pk}"
    ContactIdentity.objects.bulk_update(identities, ["value"])
    yield "identities", len(identities)
    yield "events", clear_event_values(Q(contact_id__in=ids), PERSONAL_EVENT_KEYS)


def personal_event_keys(name: str, *keys: str) -> None:
    """Declare which payload values of an app's event are personal (cleared with their conversation)."""
    PERSONAL_EVENT_KEYS[name] = keys


def clear_event_values(where: Q, keys_by_name: dict[str, tuple[str, ...]]) -> int:
    """Set the personal payload values of the matching events to "" (one UPDATE per event name)."""
    cleared = 0
    for name, keys in keys_by_name.items():
        blank = json.dumps(dict.fromkeys(keys, ""))
        matching = Event.objects.filter(where, name=name).exclude(payload__contains=dict.fromkeys(keys, ""))
        ids = list(matching.values_list("pk", flat=True))
        if not ids:
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Event._meta.db_table} SET payload = payload || %s::jsonb WHERE id = ANY(%s)",  # noqa: S608
                [blank, ids],
            )
            cleared += cursor.rowcount
    return cleared


def _scrub_message_metadata(messages: Any) -> int:
    """Drop the personal metadata of the messages and delete their stored files; the files deleted.

    The attachment entries go too (an entry without its file reads as "still downloading" in the
    console); `attachments_removed` keeps how many there were."""
    personal = Q(metadata__has_key="attachments")
    for key in PERSONAL_MESSAGE_KEYS:
        personal |= Q(metadata__has_key=key)
    changed, files = [], 0
    for message in messages.filter(personal).only("pk", "metadata"):
        metadata = {key: value for key, value in message.metadata.items() if key not in PERSONAL_MESSAGE_KEYS}
        items = metadata.pop("attachments", None)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("stored"):
                    default_storage.delete(item["stored"])
                    files += 1
            metadata["attachments_removed"] = len(items)
        message.metadata = metadata
        changed.append(message)
    Message.objects.bulk_update(changed, ["metadata"], batch_size=BATCH)
    return files
