"""The assistant turn for one inbound message.

One AssistantRun per triggering message (a one-to-one key), so a task delivered twice never answers
twice. The turn is silent while a person has the conversation. The engines that actually answer plug in
here; until one is configured the run is recorded as skipped and nothing is replied.
"""

from __future__ import annotations

import logging
import time

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import AssistantRun, ConversationStatus, Message

logger = logging.getLogger("talia.assistant")

NO_ENGINE = "none"


def run_turn(message_id: str) -> AssistantRun | None:
    """Run (at most once) the assistant turn triggered by inbound message `message_id`."""
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None:
        logger.info("Turn for message %s skipped: the message no longer exists", message_id)
        return None
    conversation = message.conversation
    if conversation.status != ConversationStatus.BOT:
        logger.info(
            "Turn for message %s skipped: conversation %s is %s", message_id, conversation.pk, conversation.status
        )
        return None
    started = time.monotonic()
    try:
        with transaction.atomic():
            run = AssistantRun.objects.create(
                conversation=conversation,
                trigger_message=message,
                engine=NO_ENGINE,
                previous_response_id=conversation.last_response_id,
            )
    except IntegrityError:
        logger.info("Turn for message %s already ran; not answering twice", message_id)
        return None

    run.status = AssistantRun.Status.SKIPPED
    run.error = "No assistant engine is configured yet."
    run.latency_ms = int((time.monotonic() - started) * 1000)
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "latency_ms", "finished_at", "updated"])
    logger.info("Turn for message %s recorded as run %s (%s)", message_id, run.pk, run.status)
    return run
