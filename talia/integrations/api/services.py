"""What the integrator API does, behind its thin views (docs/api.md).

Invariants:
- Every write leaves one ApiAuditEntry in the same transaction as the change (`audited()`), so a change
  without its audit row (or the reverse) never commits.
- Messages go out through `conversations.inbox.send()`, the one outbound path (delivery on commit, per
  channel), lead stages change through `leads.pipeline.move_card()`, and contact fields are normalised by
  `conversations.leadfields.normalise()`: the API adds no second way to do any of them.
- Erasing a contact reuses the retention code (conversations.retention and the apps' RetentionParts):
  an erased contact looks like one the retention policy anonymised, with the conversation skeleton, counts,
  stages and times kept for the KPIs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from conversations import events, inbox, leadfields, realtime, retention
from conversations.console.permissions import is_agent
from conversations.models import Contact, Conversation, ConversationStatus, Event, Message, Sender
from leads import pipeline
from leads.models import LeadCard, LeadMovement
from talia.api import ApiError
from talia.integrations.api.events import CONTACT_ERASED
from talia.integrations.models import ApiAuditEntry, ApiToken
from talia.integrations.sinks import PERSONAL_KEYS, personal_keys

MAX_TEXT = 4000
# Contact fields an integrator may change, each checked the way the rest of TalIA checks it.
EDITABLE_LEAD_FIELDS = leadfields.LEAD_FIELDS  # full_name, email, phone, company
EDITABLE_OTHER_FIELDS = ("display_name", "locale")


@contextmanager
def audited(
    token: ApiToken, request: Any, object_type: str, object_id: Any, action: str, summary: str = ""
) -> Iterator[None]:
    """Run the block and write its audit row in one transaction (the block's exception rolls both back)."""
    with transaction.atomic():
        yield
        ApiAuditEntry.objects.create(
            token=token,
            method=request.method,
            path=request.path[:300],
            object_type=object_type,
            object_id=str(object_id)[:64],
            action=action,
            summary=summary,
        )


# --- Contacts ----------------------------------------------------------------------------------------


def update_contact(contact: Contact, values: dict[str, str]) -> list[str]:
    """Store the changed fields (lead fields normalised; "" clears one); the names of those that changed."""
    clean: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for name, value in values.items():
        if name in EDITABLE_LEAD_FIELDS and value:
            try:
                value = leadfields.normalise(name, value)
            except leadfields.LeadFieldError as exc:
                problems[name] = [str(exc).split(". Ask")[0] + "."]
                continue
        clean[name] = value
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        changed = [name for name, value in clean.items() if getattr(locked, name) != value]
        for name in changed:
            setattr(locked, name, clean[name])
        if changed:
            locked.save(update_fields=[*changed, "updated"])
            realtime.publish_contact_changed(locked.pk)
    for name in changed:
        setattr(contact, name, clean[name])
    contact.updated = locked.updated
    return changed


def _row(instance: models.Model) -> dict[str, Any]:
    """Every stored column of a row, as JSON-ready values (the export hides nothing TalIA holds)."""
    row = {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}
    return json.loads(json.dumps(row, cls=DjangoJSONEncoder))


def _rows_pointing_at(
    parents: dict[type[models.Model], list[Any]], seen: set[tuple[str, Any]], skip: set[str]
) -> dict[type[models.Model], list[models.Model]]:
    """Rows of every table with a foreign key to one of `parents` (pks by model), not yet in `seen`; one
    query per relation, whatever the number of parents."""
    found: dict[type[models.Model], list[models.Model]] = {}
    for model, pks in parents.items():
        for relation in model._meta.related_objects:
            related = relation.related_model
            if isinstance(related, str) or relation.many_to_many or related._meta.label_lower in skip:
                continue
            label = related._meta.label_lower
            rows = related._default_manager.filter(**{f"{relation.field.name}__in": pks}).order_by("pk")
            for row in rows:
                if (label, row.pk) not in seen:
                    seen.add((label, row.pk))
                    found.setdefault(related, []).append(row)
    return found


def export_contact(contact: Contact) -> dict[str, Any]:
    """Everything TalIA holds about the contact: the main records in shape, and every other row that
    points at the contact, its conversations, messages or lead card (any app's) under `records`."""
    conversations = list(contact.conversations.order_by("opened_at", "pk"))
    card = LeadCard.objects.filter(contact=contact).first()
    seen: set[tuple[str, Any]] = {("conversations.contact", contact.pk)}
    seen.update(("conversations.conversation", conversation.pk) for conversation in conversations)
    messages_by_conversation: dict[Any, list[dict[str, Any]]] = {}
    messages = list(Message.objects.filter(conversation__contact=contact).order_by("conversation_id", "seq"))
    for message in messages:
        seen.add(("conversations.message", message.pk))
        messages_by_conversation.setdefault(message.conversation_id, []).append(_row(message))
    shaped: dict[str, list[Any]] = {"identities": [], "events": [], "meetings": [], "movements": []}
    identities = list(contact.identities.order_by("pk"))
    event_rows = list(
        Event.objects.filter(Q(contact=contact) | Q(conversation__contact=contact)).order_by("pk").distinct()
    )
    meetings = list(contact.meetings.order_by("start", "pk"))
    movements = list(LeadMovement.objects.filter(card=card).order_by("created", "pk")) if card else []
    for label, rows, section in (
        ("conversations.contactidentity", identities, "identities"),
        ("conversations.event", event_rows, "events"),
        ("leads.scheduledevent", meetings, "meetings"),
        ("leads.leadmovement", movements, "movements"),
    ):
        for row in rows:
            seen.add((label, row.pk))
            shaped[section].append(_row(row))
    if card is not None:
        seen.add(("leads.leadcard", card.pk))
    # Everything else that points at these rows, and at what points at those: web sessions, calls and
    # their recordings, ratings, summaries, notes, assistant runs and their tool calls...
    skip = {"integrations.apiauditentry"}
    records: dict[str, list[Any]] = {}
    parents: dict[type[models.Model], list[Any]] = {
        Contact: [contact.pk],
        Conversation: [conversation.pk for conversation in conversations],
        Message: [message.pk for message in messages],
        LeadCard: [card.pk] if card else [],
    }
    while parents:
        found = _rows_pointing_at({model: pks for model, pks in parents.items() if pks}, seen, skip)
        for model, related in found.items():
            records.setdefault(model._meta.label_lower, []).extend(_row(row) for row in related)
        parents = {model: [row.pk for row in related] for model, related in found.items()}
    return {
        "exported_at": timezone.now().isoformat(),
        "contact": _row(contact),
        "identities": shaped["identities"],
        "conversations": [
            {**_row(conversation), "messages": messages_by_conversation.get(conversation.pk, [])}
            for conversation in conversations
        ],
        "lead_card": {**_row(card), "movements": shaped["movements"]} if card else None,
        "meetings": shaped["meetings"],
        "events": shaped["events"],
        "records": records,
    }


def erase_contact(contact: Contact, *, by: str) -> dict[str, int]:
    """Erase the contact's personal data (GDPR); their conversations' skeleton and counts stay. Returns
    what was cleared, counted (`messages`: texts blanked, `events`: payloads changed...), and
    `conversations`: how many the contact has.

    Runs the retention policy's scrubbers (every app's RetentionPart) on all the contact's conversations,
    open ones included, and on the contact, then blanks every value under a personal key
    (sinks.personal_keys()) in their events. Idempotent; records `contact_erased`.
    """
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        ids = list(Conversation.objects.filter(contact=locked).values_list("pk", flat=True))
        scrubbed = list(retention.scrub_conversations(ids))
        for part in retention.parts.all():
            scrubbed += list(part.conversations(ids))
        scrubbed += list(retention.scrub_contacts([locked.pk]))
        for part in retention.parts.all():
            scrubbed += list(part.contacts([locked.pk]))
        # What the retention policy keeps for its own reasons but an erasure must not: delivery errors may
        # quote the number, the provider's conversation id may be the address.
        Message.objects.filter(conversation_id__in=ids).exclude(delivery_error="").update(delivery_error="")
        Conversation.objects.filter(pk__in=ids).exclude(provider_conversation_id="").update(provider_conversation_id="")
        kept = Message.objects.filter(conversation_id__in=ids).count()
        blanked = _blank_personal_event_values(Q(contact_id=locked.pk) | Q(conversation_id__in=ids))
        # Marked the way the retention policy marks what it has done, and only that: an open conversation,
        # and a contact with one, stay unmarked, so what they say after the erasure is cleared in its turn.
        now = timezone.now()
        closed = Conversation.objects.filter(pk__in=ids, status=ConversationStatus.CLOSED, anonymised_at__isnull=True)
        closed.update(anonymised_at=now)
        still_open = Conversation.objects.filter(pk__in=ids).exclude(status=ConversationStatus.CLOSED).exists()
        Contact.objects.filter(pk=locked.pk).update(anonymised_at=None if still_open else now, updated=now)
        events.emit(
            CONTACT_ERASED,
            contact=locked,
            conversations=len(ids),
            messages=kept,
            by=by,
        )
        realtime.publish_contact_changed(locked.pk)
    counts: dict[str, int] = {"conversations": len(ids)}
    for what, count in [*scrubbed, ("events", blanked)]:
        if what != "conversations":
            counts[what] = counts.get(what, 0) + count
    return counts


def _blank_personal_event_values(where: Q) -> int:
    """Set every personal value (sinks.personal_keys()) in the matching events' payloads to "" (the keys
    stay, so payloads still match their declarations); the number of events changed."""
    keys = sorted(PERSONAL_KEYS.union(*retention.PERSONAL_EVENT_KEYS.values()))
    blanked = 0
    matching = Event.objects.filter(where).filter(payload__has_any_keys=keys)
    for event in matching.only("pk", "name", "payload"):
        personal = personal_keys(event.name)
        payload = {key: ("" if key in personal else value) for key, value in event.payload.items()}
        if payload != event.payload:
            blanked += 1
            Event.objects.filter(pk=event.pk).update(payload=payload)
    return blanked


# --- Leads -------------------------------------------------------------------------------------------


def move_lead(card: LeadCard, stage: str, reason: str) -> LeadMovement | None:
    """Move the card as the system (an integration is no person: it cannot win, lose or reopen a lead)."""
    try:
        return pipeline.move_card(card, stage, moved_by=LeadMovement.MovedBy.SYSTEM, reason=reason)
    except pipeline.StageError as exc:
        raise ApiError(409, "stage_refused", str(exc)) from None


# --- Messages ----------------------------------------------------------------------------------------


def agent_for(agent_id: int | None) -> Any:
    if agent_id is None:
        return None
    agent = get_user_model().objects.filter(pk=agent_id).first()
    if agent is None or not is_agent(agent):
        raise ValidationError({"agent_id": ["No such active agent."]})
    return agent


def send_message(conversation_id: UUID, text: str, sender: str, agent: Any) -> Message:
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        raise ApiError(404, "not_found", "No such conversation.")
    try:
        return inbox.send(conversation, text, sender=Sender(sender), agent=agent)
    except inbox.ConversationClosedError:
        raise ApiError(409, "conversation_closed", "The conversation is closed.") from None
