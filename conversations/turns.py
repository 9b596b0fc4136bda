"""The assistant turn for one inbound message.

The inbox records a `pending` AssistantRun with every inbound message that reaches the bot, in the same
transaction as the message. The turn task claims that run with one conditional UPDATE, so however
often the task is delivered, exactly one execution answers; a run whose worker died is claimable again
once its lease has expired. The engines that actually answer plug in here; until one is configured the
run is recorded as skipped and nothing is replied.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from conversations.models import AssistantRun, ConversationStatus

logger = logging.getLogger("talia.assistant")

# A running turn whose worker has not finished it in this long is presumed dead and may be claimed again.
TURN_LEASE = timedelta(minutes=5)


def claimable_runs() -> Q:
    return Q(status=AssistantRun.Status.PENDING) | Q(
        status=AssistantRun.Status.RUNNING, started_at__lt=timezone.now() - TURN_LEASE
    )


def claim_run(message_id: str | UUID) -> AssistantRun | None:
    """Take the turn of `message_id` for this worker; None if there is none or another worker has it."""
    message_id = UUID(str(message_id))
    now = timezone.now()
    claimed = AssistantRun.objects.filter(claimable_runs(), trigger_message_id=message_id).update(
        status=AssistantRun.Status.RUNNING, started_at=now, updated=now
    )
    if not claimed:
        return None
    return AssistantRun.objects.select_related("conversation__contact", "trigger_message").get(
        trigger_message_id=message_id
    )


def run_turn(message_id: str | UUID) -> AssistantRun | None:
    """Run (at most once) the assistant turn triggered by inbound message `message_id`."""
    run = claim_run(message_id)
    if run is None:
        logger.info("Turn for message %s: nothing to do (already taken or finished)", message_id)
        return None
    conversation = run.conversation
    if conversation.status != ConversationStatus.BOT:
        # A person took over between the message and this turn: the assistant stays silent.
        return finish(run, AssistantRun.Status.SKIPPED, f"The conversation is {conversation.status}.")
    return finish(run, AssistantRun.Status.SKIPPED, "No assistant engine is configured yet.")


def finish(run: AssistantRun, status: str, error: str = "") -> AssistantRun:
    now = timezone.now()
    run.status = status
    run.error = error
    run.finished_at = now
    run.latency_ms = int((now - run.started_at).total_seconds() * 1000) if run.started_at else None
    run.save(update_fields=["status", "error", "finished_at", "latency_ms", "updated"])
    logger.info("Turn for message %s finished as %s %s", run.trigger_message_id, status, error)
    return run
