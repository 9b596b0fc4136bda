"""The handoff queue over time: what a contact is told while waiting, and the fallback when nobody comes.

A conversation queued for longer than TALIA_QUEUE_TIMEOUT_S goes back to the assistant (a periodic
Celery task runs `expire_stale_handoffs`), and the contact gets a message in their language saying so.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TypedDict

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from conversations import inbox, state
from conversations.console import presence
from conversations.models import Conversation, ConversationStatus, HandoffRequest, Sender

logger = logging.getLogger(__name__)

EXPIRE_BATCH = 100


class QueueOutlook(TypedDict):
    agents_online: int | None
    queue_timeout_s: int | None


def queue_outlook() -> QueueOutlook:
    """What a contact who just asked for a person may be told: who is online, how long the queue waits.

    `agents_online` is None when presence is unknown (Redis unreachable): then nobody claims it is zero.
    """
    return {"agents_online": presence.online_count(), "queue_timeout_s": settings.TALIA_QUEUE_TIMEOUT_S or None}


def expire_stale_handoffs() -> list[str]:
    """Hand every conversation queued past the timeout back to the assistant; returns their ids."""
    timeout = settings.TALIA_QUEUE_TIMEOUT_S
    if not timeout:
        return []
    cutoff = timezone.now() - timedelta(seconds=timeout)
    stale = list(
        Conversation.objects.filter(
            status=ConversationStatus.QUEUED,
            handoff_requests__status=HandoffRequest.Status.PENDING,
            handoff_requests__created__lt=cutoff,
        )
        .select_related("contact")
        .distinct()
        .order_by("updated")[:EXPIRE_BATCH]
    )
    expired = []
    for conversation in stale:
        try:
            with transaction.atomic():
                state.expire_handoff(conversation)
                with translation.override(conversation.contact.locale):
                    text = _(
                        "Nobody from the team could join the conversation in time, sorry. I'm here to help "
                        "meanwhile: tell me what you need, or leave your email or phone number and the team "
                        "will get back to you."
                    )
                inbox.send(conversation, text, sender=Sender.ASSISTANT, metadata={"kind": "queue_timeout"})
        except state.TransitionError:
            continue  # claimed or closed a moment ago: nothing to do
        expired.append(str(conversation.pk))
    if expired:
        logger.info("Handed %d unclaimed conversation(s) back to the assistant", len(expired))
    return expired
