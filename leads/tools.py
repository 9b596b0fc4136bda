"""The tools leads registers for the assistant: `close_lead`, `schedule_meeting` and `update_meeting` (both
engines), and the one place meetings are booked and changed (`book`, `change_meeting`), by the assistant,
the analysis or an agent.

A meeting is proposed when booked; the assistant says the day, time and topic back to the contact, and the
contact's yes confirms it (`update_meeting`), as an agent's Confirm does in the console. A topic that
arrives after the day and time replaces the placeholder title the meeting was booked with, in the live
turn (`update_meeting`) and in the analysis (`book` on the same start), never a title someone chose.

What a contact says can steer the model, so the tools hold the line themselves: `close_lead` may record a
lead and qualify it, never win or lose it (the closing stages are a person's call, enforced again in
`leads.pipeline`), never touches a lead a person already closed, and records a value only when it is a
plain amount from 0 to TALIA_LEAD_MAX_VALUE (rounded to cents).
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations import events, realtime
from conversations.assistant import capabilities
from conversations.assistant.tools import ToolError
from conversations.models import Conversation, Message, Sender
from conversations.registry import Tool
from leads import events as lead_events
from leads import meetings, pipeline
from leads.models import ConversationInsight, LeadCard, LeadMovement, ScheduledEvent
from talia.text import collapse_whitespace

MAX_TITLE = 200


def close_lead(conversation: Conversation, summary: str, stage: str | None, value: float | None) -> dict[str, Any]:
    summary = collapse_whitespace(summary)
    if not summary:
        raise ToolError("Give a one- or two-sentence summary of what the contact wants.")
    if stage is not None and stage not in assistant_stages():
        if stage in pipeline.closing_stages():
            raise ToolError(
                f"Only a person on the team may mark a lead {stage!r}. Record it with stage null, and tell the "
                "contact the team will follow up."
            )
        raise ToolError(f"Unknown stage {stage!r}: use one of {', '.join(assistant_stages())}, or null.")
    amount = _amount(value)
    existing = LeadCard.objects.filter(contact=conversation.contact).values_list("stage", flat=True).first()
    if existing in pipeline.closing_stages():
        raise ToolError(f"The team has already marked this lead {existing!r}; it is theirs to change.")
    card, created = pipeline.card_for(conversation.contact, conversation, LeadMovement.MovedBy.ASSISTANT)
    pipeline.update_card(card, summary=summary, value=amount)
    if stage is not None:
        pipeline.move_card(card, stage, moved_by=LeadMovement.MovedBy.ASSISTANT, reason=summary)
    ConversationInsight.objects.update_or_create(
        conversation=conversation, defaults={"intent": summary[:200], "engine": "live"}
    )
    return {"card_id": card.pk, "stage": card.stage, "created": created}


def assistant_stages() -> list[str]:
    """The stages the assistant may move a card to: all but the closing ones."""
    return [stage for stage in pipeline.stages() if stage not in pipeline.closing_stages()]


def _amount(value: object) -> Decimal | None:
    """A plain amount in cents, 0 to TALIA_LEAD_MAX_VALUE; anything else (NaN, infinity, text) is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ToolError("The value must be a number, in the business's currency.")
    try:
        amount = Decimal(str(value))
        if not amount.is_finite():  # NaN and infinity, which Python's JSON parser accepts
            raise InvalidOperation
        amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # also: too many digits to hold in cents
        raise ToolError("The value must be a number, in the business's currency.") from None
    maximum = Decimal(settings.TALIA_LEAD_MAX_VALUE)
    if not Decimal(0) <= amount <= maximum:
        raise ToolError(f"The value must be an amount from 0 to {maximum}; leave it null when unsure.")
    return amount


def schedule_meeting(
    conversation: Conversation, title: str, start: str, duration_minutes: int | None, notes: str | None
) -> dict[str, Any]:
    title = collapse_whitespace(title)[:MAX_TITLE]
    if not title:
        raise ToolError("Give the meeting a short title (its topic).")
    if duration_minutes is not None and not 5 <= duration_minutes <= 480:
        raise ToolError("The duration must be between 5 and 480 minutes.")
    asked = _last_contact_message(conversation)
    reference = asked.created if asked else timezone.now()
    starts_at = meetings.resolve_start(start, conversation.contact.locale, reference)
    if starts_at is None:
        raise ToolError("Give the day and the time, e.g. 2026-12-04T10:00 or 'el viernes a las 10'.")
    if starts_at <= timezone.now():
        raise ToolError("That moment has already passed: ask the contact for a future day and time.")
    event, created = book(
        conversation,
        title=title,
        start=starts_at,
        duration_minutes=duration_minutes,
        notes=notes or "",
        message=asked,
        created_by=LeadMovement.MovedBy.ASSISTANT,
    )
    local = timezone.localtime(event.start)
    return {
        "event_id": str(event.pk),
        "title": event.title,
        "start": local.isoformat(),
        "duration_minutes": event.duration_minutes,
        "status": event.status,
        "already_booked": not created,
        "note": "Proposed, not confirmed yet: tell the contact the day and time and ask them to confirm.",
    }


def book(
    conversation: Conversation,
    *,
    title: str,
    start: datetime,
    duration_minutes: int | None,
    notes: str,
    message: Message | None,
    created_by: str,
) -> tuple[ScheduledEvent, bool]:
    """The meeting at `start` in this conversation, created once (the live turn and the analysis agree)."""
    contact = conversation.contact
    attendees = [{"name": str(contact), "email": contact.email}] if contact.email else [{"name": str(contact)}]
    try:
        with transaction.atomic():
            event, created = ScheduledEvent.objects.get_or_create(
                conversation=conversation,
                start=start,
                defaults={
                    "title": title[:MAX_TITLE],
                    "duration_minutes": duration_minutes or settings.TALIA_MEETING_MINUTES,
                    "notes": notes[:2000],
                    "attendees": attendees,
                    "contact": contact,
                    "message": message,
                    "created_by": created_by,
                },
            )
    except IntegrityError:  # a concurrent booking of the same start won
        return ScheduledEvent.objects.get(conversation=conversation, start=start), False
    if not created and meetings.is_placeholder(event.title, contact) and not meetings.is_placeholder(title, contact):
        # The topic came after the day and time: it names the meeting booked with a placeholder.
        event = change_meeting(event, title=title, changed_by=created_by)
    if created:
        realtime.publish_contact_changed(contact.pk)  # the console sidebar's meetings
        events.emit(
            lead_events.MEETING_SCHEDULED,
            conversation=conversation,
            event_id=str(event.pk),
            start=event.start.isoformat(),
            created_by=created_by,
        )
        card, _ = pipeline.card_for(contact, conversation, created_by)
        meeting_stage = "meeting"
        stages = pipeline.stages()
        # Forward only, and never into or out of a closing stage (that is a person's call).
        if (
            meeting_stage in stages
            and stages.index(card.stage) < stages.index(meeting_stage)
            and not {card.stage, meeting_stage} & set(pipeline.closing_stages())
        ):
            pipeline.move_card(card, meeting_stage, moved_by=created_by, reason=f"Meeting: {event.title}")
    return event, created


def change_meeting(
    event: ScheduledEvent,
    *,
    title: str | None = None,
    status: str | None = None,
    start: datetime | None = None,
    changed_by: str,
) -> ScheduledEvent:
    """Retitle, confirm, cancel or move a meeting, recording `meeting_updated` when anything changed."""
    changes: dict[str, Any] = {}
    if title is not None and (title := collapse_whitespace(title)[:MAX_TITLE]) and title != event.title:
        changes["title"] = title
    if status is not None and status != event.status:
        changes["status"] = ScheduledEvent.Status(status)
    if start is not None and start != event.start:
        changes["start"] = start
    if not changes:
        return event
    with transaction.atomic():
        ScheduledEvent.objects.filter(pk=event.pk).update(**changes)
        event.refresh_from_db()
        realtime.publish_contact_changed(event.contact_id)  # the console sidebar's meetings
        events.emit(
            lead_events.MEETING_UPDATED,
            conversation=event.conversation,
            contact=event.contact,
            event_id=str(event.pk),
            title=event.title,
            start=event.start.isoformat(),
            status=event.status,
            updated_by=changed_by,
        )
    return event


DECISIONS = {"confirm": ScheduledEvent.Status.CONFIRMED, "cancel": ScheduledEvent.Status.CANCELLED}


def update_meeting(conversation: Conversation, title: str | None, decision: str | None) -> dict[str, Any]:
    """The assistant's change to the meeting it proposed last in this conversation."""
    event = conversation.meetings.filter(status=ScheduledEvent.Status.PROPOSED).order_by("-created").first()
    if event is None:
        raise ToolError("There is no proposed meeting in this conversation: book one with the day and time first.")
    if decision is not None and decision not in DECISIONS:
        raise ToolError("decision must be 'confirm', 'cancel' or null.")
    if not (title and title.strip()) and decision is None:
        raise ToolError("Give the meeting's topic as its title, or a decision.")
    event = change_meeting(
        event,
        title=title or None,
        status=DECISIONS[decision] if decision else None,
        changed_by=LeadMovement.MovedBy.ASSISTANT,
    )
    return {
        "event_id": str(event.pk),
        "title": event.title,
        "start": timezone.localtime(event.start).isoformat(),
        "status": event.status,
    }


def _last_contact_message(conversation: Conversation) -> Message | None:
    return conversation.messages.filter(sender=Sender.CONTACT).order_by("-seq").first()


CLOSE_LEAD = Tool(
    "close_lead",
    "Record the lead on the contact's card once you know what they want: a short summary, and when it is "
    "clear the pipeline stage and the deal's value. You may qualify a lead; only a person on the team marks it "
    "won or lost.",
    {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "What the contact wants, in one or two sentences."},
            "stage": {
                "type": ["string", "null"],
                "description": "The pipeline stage to move the card to, or null to leave it: "
                + ", ".join(assistant_stages())
                + " (the closing stages "
                + " and ".join(pipeline.closing_stages())
                + " are set by people only).",
            },
            "value": {
                "type": ["number", "null"],
                "description": "The deal's value in the business's currency, if the contact said it: a plain "
                f"amount from 0 to {settings.TALIA_LEAD_MAX_VALUE}, or null.",
            },
        },
        "required": ["summary", "stage", "value"],
        "additionalProperties": False,
    },
    close_lead,
    capability=capabilities.CLOSE_LEAD,
)

SCHEDULE_MEETING = Tool(
    "schedule_meeting",
    "Propose a meeting the contact asked for (a call, a visit, a demo) on the day and time they gave. It is "
    "stored as proposed: confirm the day and time with the contact afterwards.",
    {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "What the meeting is about, e.g. 'Revisión del proyecto'."},
            "start": {
                "type": "string",
                "description": "When: an ISO 8601 date and time (local time if no offset), or the contact's own "
                "words such as 'el viernes a las 10' or 'next Tuesday 3pm'.",
            },
            "duration_minutes": {"type": ["integer", "null"], "description": "Length in minutes, or null."},
            "notes": {"type": ["string", "null"], "description": "Anything the team should know, or null."},
        },
        "required": ["title", "start", "duration_minutes", "notes"],
        "additionalProperties": False,
    },
    schedule_meeting,
    capability=capabilities.BOOK_MEETING,
)

UPDATE_MEETING = Tool(
    "update_meeting",
    "Change the meeting you proposed last in this conversation: give it its topic when the contact says what it "
    "is about (title), and after saying the day, time and topic back to the contact, confirm it when they agree "
    "or cancel it when they do not (decision).",
    {
        "type": "object",
        "properties": {
            "title": {"type": ["string", "null"], "description": "The meeting's topic, e.g. 'Revisión del proyecto'."},
            "decision": {
                "type": ["string", "null"],
                "enum": ["confirm", "cancel", None],
                "description": "'confirm' when the contact agreed to the day and time, 'cancel' when they did not, "
                "or null.",
            },
        },
        "required": ["title", "decision"],
        "additionalProperties": False,
    },
    update_meeting,
    capability=capabilities.UPDATE_MEETING,
)
