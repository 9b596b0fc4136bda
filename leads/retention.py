"""Retention for leads (conversations.retention).

An old conversation loses what the analysis read in it (intent, next step, findings). An anonymised
contact's lead card keeps its stage, value, owner and movements (the pipeline KPIs) and loses its texts;
its meetings keep their start, duration, status and who booked them, and lose title, attendees and notes.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from conversations.retention import RetentionPart, parts, personal_event_keys
from leads.events import MEETING_UPDATED
from leads.models import ConversationAnalysis, ConversationInsight, LeadCard, LeadMovement, ScheduledEvent

MEETING_TITLE = "—"


def scrub_conversations(ids: list[UUID]) -> Iterable[tuple[str, int]]:
    yield (
        "insights",
        (
            ConversationInsight.objects.filter(conversation_id__in=ids)
            .exclude(intent="", topics=[], next_step="")
            .update(intent="", topics=[], next_step="")
        ),
    )
    yield (
        "analyses",
        ConversationAnalysis.objects.filter(conversation_id__in=ids).exclude(findings={}).update(findings={}),
    )


def scrub_contacts(ids: list[UUID]) -> Iterable[tuple[str, int]]:
    cards = LeadCard.objects.filter(contact_id__in=ids)
    yield "lead_cards", cards.exclude(summary="", notes="").update(summary="", notes="")
    yield "lead_movements", LeadMovement.objects.filter(card__in=cards).exclude(reason="").update(reason="")
    yield (
        "meetings",
        (
            ScheduledEvent.objects.filter(contact_id__in=ids)
            .exclude(title=MEETING_TITLE, attendees=[], notes="")
            .update(title=MEETING_TITLE, attendees=[], notes="")
        ),
    )


PART = RetentionPart("leads", scrub_conversations, scrub_contacts)


def register() -> None:
    parts.register(PART)
    personal_event_keys(MEETING_UPDATED.name, "title")
