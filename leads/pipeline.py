"""The lead pipeline: the one place that creates cards and changes their stage, recording each move.

Each change is also pushed (`contact.changed`, conversations.realtime) to the staff viewing the contact's
conversations, whose sidebar shows the card.

Closing a lead is a person's decision: only a move made by an agent (the dashboard's board) may put a card
into a closing stage (the last two of TALIA_LEAD_STAGES, won and lost by default) or take it out of one.
The assistant, the analysis and the system can never win, lose or reopen a lead, whatever they are told.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations import events, realtime
from conversations.leadfields import record_lead_captured
from conversations.models import Contact, Conversation
from leads import events as lead_events
from leads.models import LeadCard, LeadMovement


class StageError(ValueError):
    """Not one of TALIA_LEAD_STAGES, or a closing move not made by a person."""


# Who may move a card into or out of a closing stage: people only.
PEOPLE = frozenset({LeadMovement.MovedBy.AGENT})


def stages() -> list[str]:
    return list(settings.TALIA_LEAD_STAGES)


def closing_stages() -> list[str]:
    """The last two stages (won, lost by default) close a lead."""
    return stages()[-2:]


def check_stage(stage: str) -> str:
    if stage not in stages():
        raise StageError(f"Unknown stage {stage!r}: use one of {', '.join(stages())}.")
    return stage


def card_for(contact: Contact, conversation: Conversation | None, moved_by: str) -> tuple[LeadCard, bool]:
    """The contact's card, created in the first stage (with its first movement) when there is none."""
    with transaction.atomic():
        card, created = LeadCard.objects.select_for_update().get_or_create(
            contact=contact,
            defaults={
                "source_conversation": conversation,
                "channel": conversation.channel if conversation else "",
                "stage": stages()[0],
            },
        )
        if created:
            LeadMovement.objects.create(card=card, to_stage=card.stage, moved_by=moved_by, reason="Lead captured")
            events.emit(
                lead_events.LEAD_CREATED,
                conversation=conversation,
                contact=contact,
                card_id=card.pk,
                channel=card.channel,
                stage=card.stage,
            )
            # Once per contact: the core lead tools may already have recorded it when the details were complete.
            record_lead_captured(contact, conversation, card_id=card.pk)
            realtime.publish_contact_changed(contact.pk)
    return card, created


def move_card(
    card: LeadCard, to_stage: str, *, moved_by: str, user: Any = None, reason: str = ""
) -> LeadMovement | None:
    """Move `card` to `to_stage`, recording who or what moved it and why; None when it is already there."""
    check_stage(to_stage)
    with transaction.atomic():
        locked = LeadCard.objects.select_for_update().get(pk=card.pk)
        if locked.stage == to_stage:
            return None
        closing = closing_stages()
        if (to_stage in closing or locked.stage in closing) and moved_by not in PEOPLE:
            raise StageError(f"Only a person may move a lead into or out of {' or '.join(closing)}.")
        movement = LeadMovement.objects.create(
            card=locked,
            from_stage=locked.stage,
            to_stage=to_stage,
            moved_by=moved_by,
            user=user,
            reason=reason[:1000],
        )
        LeadCard.objects.filter(pk=locked.pk).update(stage=to_stage, updated=timezone.now())
        realtime.publish_contact_changed(locked.contact_id)  # the console sidebar's stage
        if to_stage in closing_stages():
            events.emit(
                lead_events.LEAD_CLOSED,
                conversation=locked.source_conversation,
                contact=locked.contact,
                card_id=locked.pk,
                stage=to_stage,
            )
    card.stage = to_stage
    return movement


def update_card(card: LeadCard, *, summary: str | None = None, value: Decimal | None = None) -> LeadCard:
    fields = []
    if summary:
        card.summary = summary[:4000]
        fields.append("summary")
    if value is not None:
        card.value = value
        fields.append("value")
    if fields:
        card.save(update_fields=[*fields, "updated"])
    if value is not None:
        realtime.publish_contact_changed(card.contact_id)  # the console sidebar shows the value
    return card
