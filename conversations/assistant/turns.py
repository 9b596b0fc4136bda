"""The assistant turn for one inbound message.

The inbox records a `pending` AssistantRun with every inbound message that reaches the bot, in the same
transaction as the message. The turn task claims that run with one conditional UPDATE that also records
the claiming worker process (talia.workers.identity), so however often the task is delivered, exactly one
execution answers.

A worker can die mid-turn (`kill -9`, OOM). `release_abandoned_runs()`, swept by every worker at start
and every few seconds, hands a running run back as pending once its holder's heartbeat is stale, and the
caller queues it at once; the 5-minute lease stays as the last resort (no recorded holder, Redis
unreadable). The reply and the run's outcome are written in one transaction, and only while this
execution still holds the run (same status, holder and claim time): an execution that was presumed dead
and lost its run stores nothing, so a recovered turn is answered exactly once.

A claimed turn builds its context from the database, calls the engine with no transaction or row lock
open (tools take their own short transactions), stores the reply through the inbox and records ids,
usage, rounds and latency on the run. A provider failure that may pass (429, 5xx, timeout) hands the run
back as pending and asks the task to retry later; after the last attempt, or on any other failure, the
contact gets a polite fallback reply in their language and the run is marked failed: never silence.

On doors that can show it (assistant.streaming), the reply's text is streamed to the contact while the
model writes it, under the id the reply will be stored with; the reply is then stored exactly as above,
and a turn that ends without it withdraws what was shown.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext

from conversations import inbox, profile, realtime
from conversations.assistant import statements
from conversations.assistant.base import (
    Engine,
    EngineResult,
    HistoryItem,
    ProviderError,
    ToolRoundsExceeded,
    TurnContext,
)
from conversations.assistant.engines import engine_class, get_engine
from conversations.assistant.executor import ToolExecutor, citations_of
from conversations.assistant.prompts import PROMPT_VERSION
from conversations.assistant.streaming import ReplyStream, streams_replies
from conversations.models import (
    AssistantRun,
    Contact,
    Conversation,
    ConversationStatus,
    Message,
    Sender,
    ToolCall,
)
from conversations.registry import tools
from talia import metrics, observability, workers

logger = logging.getLogger("talia.assistant")

# A running turn whose worker has not finished it in this long is presumed dead and may be claimed again.
TURN_LEASE = timedelta(minutes=5)
MAX_BACKOFF_S = 60.0


class RetryTurn(Exception):  # noqa: N818  (a request to the task, not an error)
    """The provider may recover: run the turn again after `countdown` seconds."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"retry in {countdown:.1f}s")
        self.countdown = countdown


def claimable_runs() -> Q:
    return Q(status=AssistantRun.Status.PENDING) | Q(
        status=AssistantRun.Status.RUNNING, started_at__lt=timezone.now() - TURN_LEASE
    )


def claim_run(message_id: str | UUID) -> AssistantRun | None:
    """Take the turn of `message_id` for this worker; None if there is none or another worker has it."""
    message_id = UUID(str(message_id))
    now = timezone.now()
    claim = {"status": AssistantRun.Status.RUNNING, "started_at": now, "worker": workers.identity(), "updated": now}
    # The usual case first, in one statement: a run never claimed before (no tool call of it can exist).
    run = _claim_first(message_id, claim)
    if run is not None:
        run.first_claim = True
        return run
    if not AssistantRun.objects.filter(claimable_runs(), trigger_message_id=message_id).update(**claim):
        return None
    return AssistantRun.objects.select_related("conversation__contact", "trigger_message").get(
        trigger_message_id=message_id
    )


# The claim of a run never claimed before and what the turn reads with it (its conversation, contact and
# trigger message), in one statement: the UPDATE's RETURNING row joined to the three (see statements.py).
_CLAIMED = ((AssistantRun, "r"), (Conversation, "c"), (Contact, "k"), (Message, "m"))


@functools.cache
def _claim_sql() -> str:
    quote = statements.quote
    columns = ", ".join(statements.select_list(alias, statements.fields_of(model)) for model, alias in _CLAIMED)
    run, conversation, contact, message = (quote(model._meta.db_table) for model, _alias in _CLAIMED)
    return (
        f"WITH claimed AS (UPDATE {run} SET status = %s, started_at = %s, worker = %s, updated = %s "  # noqa: S608 (names from the models)
        "WHERE trigger_message_id = %s AND status = %s AND started_at IS NULL RETURNING *) "
        f"SELECT {columns} FROM claimed r JOIN {conversation} c ON c.id = r.conversation_id "
        f"JOIN {contact} k ON k.id = c.contact_id JOIN {message} m ON m.id = r.trigger_message_id"
    )


def _claim_first(message_id: UUID, claim: dict[str, Any]) -> AssistantRun | None:
    """The run of `message_id`, claimed, if it was pending and never claimed; its relations read along."""
    params = [claim["status"], claim["started_at"], claim["worker"], claim["updated"], message_id]
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), [*params, AssistantRun.Status.PENDING])
        row = cursor.fetchone()
    if row is None:
        return None
    run, conversation, contact, message = statements.instances(
        row, [(model, statements.fields_of(model)) for model, _alias in _CLAIMED]
    )
    conversation.contact = contact
    run.conversation = conversation
    run.trigger_message = message
    return run


def _held(run: AssistantRun) -> QuerySet[AssistantRun]:
    """The run, if this execution still holds it (a recovery may have handed it to another worker)."""
    return AssistantRun.objects.filter(
        pk=run.pk, status=AssistantRun.Status.RUNNING, worker=run.worker, started_at=run.started_at
    )


def release_abandoned_runs() -> list[UUID]:
    """Hand back as pending the running turns whose worker process is dead; their trigger message ids.

    A holder is dead when its heartbeat is missing or older than TALIA_WORKER_HEARTBEAT_TTL_S and the run
    was claimed longer ago than that too (a process that just started may not have beaten yet). Raises
    redis.RedisError when liveness cannot be read: then nothing is released. The caller queues the ids.
    """
    grace = timedelta(seconds=settings.TALIA_WORKER_HEARTBEAT_TTL_S)
    now = timezone.now()
    running = list(
        AssistantRun.objects.filter(status=AssistantRun.Status.RUNNING, started_at__lt=now - grace)
        .exclude(worker="")
        .values_list("pk", "trigger_message_id", "worker", "started_at")
    )
    if not running:
        return []
    living = workers.alive(holder for _pk, _message_id, holder, _started in running)
    released = []
    for pk, message_id, holder, started_at in running:
        if holder in living:
            continue
        # Conditional on the same claim: a holder that finished meanwhile keeps its outcome.
        if AssistantRun.objects.filter(
            pk=pk, status=AssistantRun.Status.RUNNING, worker=holder, started_at=started_at
        ).update(
            status=AssistantRun.Status.PENDING,
            worker="",
            error=f"Worker {holder} died during the turn.",
            queued_at=now,
            updated=now,
        ):
            logger.warning("Turn for message %s released: its worker %s is gone", message_id, holder)
            released.append(message_id)
    return released


def run_turn(message_id: str | UUID, *, attempt: int = 0) -> AssistantRun | None:
    """Run (at most once) the assistant turn triggered by inbound message `message_id`.

    `attempt` counts earlier tries of this turn (the task's retries). Raises RetryTurn when the task
    should try again later.
    """
    run = claim_run(message_id)
    if run is None:
        logger.info("Turn for message %s: nothing to do (already taken or finished)", message_id)
        return None
    observability.bind_conversation(run.conversation)  # on the turn's log lines (TALIA_LOG_FORMAT=json)
    with profile.pinned():  # one read of the business's profile for the whole turn
        return _answer(run, attempt)


def _answer(run: AssistantRun, attempt: int) -> AssistantRun | None:
    """The claimed turn: skipped, answered, retried later (RetryTurn) or answered with the fallback."""
    message_id = run.trigger_message_id
    conversation = run.conversation
    if conversation.status != ConversationStatus.BOT:
        # A person took over between the message and this turn: the assistant stays silent.
        return finish(run, AssistantRun.Status.SKIPPED, f"The conversation is {conversation.status}.")
    history_limit = engine_class().history_messages or settings.TALIA_HISTORY_MESSAGES
    recent, newer = recent_messages(run, history_limit)
    if newer:
        # The visitor wrote again before we answered: the newest message's turn answers them all.
        return finish(run, AssistantRun.Status.SKIPPED, "A newer message from the contact will be answered.")

    engine = get_engine()
    context = build_context(run, recent, history_limit)
    # Recorded with the outcome (finish), in the same UPDATE.
    run.engine = engine.name
    run.previous_response_id = context.previous_response_id
    # The prompt file's version and the business's own words (instructions, tone...) as configured now.
    run.prompt_version = f"{PROMPT_VERSION}+{profile.current().revision}"
    typing = realtime.AssistantTyping(conversation.id, conversation.group_name)
    typing.start()  # shown only if the turn outlasts a moment (realtime.TYPING_GRACE_S)
    executor = ToolExecutor(run, first_claim=run.first_claim)
    # The reply's id is chosen now, so that what is streamed names the message it will become.
    reply_id = uuid4()
    stream = ReplyStream(conversation, reply_id) if streams_replies(conversation) else None
    try:
        result = _run_engine(engine, context, executor, stream)
    except ProviderError as exc:
        metrics.provider_failed(engine.name, exc, attempt)
        if exc.retryable and attempt + 1 < settings.TALIA_ASSISTANT_MAX_ATTEMPTS:
            countdown = exc.retry_after if exc.retry_after is not None else min(2.0 ** (attempt + 1), MAX_BACKOFF_S)
            _release(run, str(exc))
            logger.warning("Turn for message %s: %s; retrying in %.1fs", message_id, exc, countdown)
            raise RetryTurn(countdown) from exc
        return _fall_back(run, context, f"{type(exc).__name__}: {exc}")
    except ToolRoundsExceeded as exc:
        return _fall_back(run, context, str(exc))
    except Exception as exc:
        logger.exception("Turn for message %s crashed", message_id)
        return _fall_back(run, context, f"{type(exc).__name__}: {exc}")
    finally:
        typing.stop()
    if not result.text:
        return _fall_back(run, context, "The engine produced no reply text.")
    citations = executor.citations() if executor.first_claim else tool_citations(run)
    outcome = _reply(run, result, citations, reply_id)
    if stream is not None and (outcome is None or outcome.reply_message_id != reply_id):
        stream.finish(kept=False)  # not stored after all (closed meanwhile, or taken over): withdraw it
    return outcome


def _run_engine(
    engine: Engine, context: TurnContext, executor: ToolExecutor, stream: ReplyStream | None
) -> EngineResult:
    """The engine's result; what it streamed is shown whole, or withdrawn when there is no reply, before
    anything else of the turn (the fallback reply, a retry's stream) is published."""
    if stream is None:
        return engine.run(context, executor)
    try:
        result = engine.run(context, executor, stream)
    except BaseException:
        stream.finish(kept=False)
        raise
    stream.finish(kept=bool(result.text))
    return result


# Messages read past the history's length, so that what the contact wrote after the trigger is seen in
# the same query as the history.
HISTORY_SLACK = 10


def recent_messages(run: AssistantRun, limit: int | None = None) -> tuple[list[Message], bool]:
    """The last `limit` (default TALIA_HISTORY_MESSAGES) messages up to the trigger, oldest first, and
    whether the contact wrote after the trigger. One query, unless more than HISTORY_SLACK messages
    followed the trigger (or numbers are missing) or the window holds a person's message (their names:
    one more)."""
    limit = limit or settings.TALIA_HISTORY_MESSAGES
    trigger_seq = run.trigger_message.seq
    # Only what a history item and the offline engine's state need: the rest of a message (delivery
    # columns, the agent's whole user row) cost more to read and build than the query itself.
    messages = Message.objects.filter(conversation_id=run.conversation_id).only(*HISTORY_FIELDS)
    # Numbers have no holes, so the window is the messages numbered after trigger_seq - limit: the
    # history and, newest first, whatever followed the trigger (up to HISTORY_SLACK of it).
    latest = _latest_messages(run.conversation_id, trigger_seq - limit, limit + HISTORY_SLACK)
    recent = [message for message in latest if message.seq <= trigger_seq][:limit]
    whole = len(recent) == limit or (trigger_seq <= limit and len(latest) < limit + HISTORY_SLACK)
    if recent and whole:
        # The window reaches the trigger: everything after it is in `latest`, and the history is whole.
        newer = any(m.sender == Sender.CONTACT for m in latest if m.seq > trigger_seq)
    else:
        newer = messages.filter(sender=Sender.CONTACT, seq__gt=trigger_seq).exists()
        recent = list(messages.filter(seq__lte=trigger_seq).order_by("-seq")[:limit])
    _read_agents(recent)
    return recent[::-1], newer


# The fields of a message the history reads (see recent_messages).
HISTORY_FIELDS = ("id", "conversation_id", "seq", "sender", "text", "metadata", "agent_id")


@functools.cache
def _latest_sql() -> str:
    fields = statements.fields_of(Message, HISTORY_FIELDS)
    table = statements.quote(Message._meta.db_table)
    return (
        f"SELECT {statements.select_list(table, fields)} FROM {table} "  # noqa: S608 (names from the model)
        "WHERE conversation_id = %s AND seq > %s ORDER BY seq DESC LIMIT %s"
    )


def _latest_messages(conversation_id: UUID, after_seq: int, count: int) -> list[Message]:
    """The conversation's last `count` messages numbered after `after_seq`, newest first, with
    HISTORY_FIELDS only (statements.py)."""
    fields = statements.fields_of(Message, HISTORY_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(_latest_sql(), [conversation_id, after_seq, count])
        return [statements.instance(Message, fields, row) for row in cursor.fetchall()]


def _read_agents(messages: list[Message]) -> None:
    """Give the messages written by a person their author, in one query for all (none if there are none)."""
    ids = {message.agent_id for message in messages if message.agent_id and not Message.agent.is_cached(message)}
    if not ids:
        return
    agents = {user.pk: user for user in get_user_model().objects.filter(pk__in=ids)}
    for message in messages:
        if message.agent_id in agents:
            message.agent = agents[message.agent_id]


def build_context(run: AssistantRun, recent: list[Message] | None = None, limit: int | None = None) -> TurnContext:
    """What the engine gets for this turn; `recent` as recent_messages() returned it for `limit` messages
    (default TALIA_HISTORY_MESSAGES; read when None)."""
    limit = limit or settings.TALIA_HISTORY_MESSAGES
    conversation = run.conversation
    message = run.trigger_message
    if recent is None:
        recent = recent_messages(run, limit)[0]
    up_to_trigger = Message.objects.filter(conversation=conversation, seq__lte=message.seq).select_related("agent")
    # Continue the provider's thread only from a response whose reply we stored; the model then needs
    # just what happened after that reply.
    seen_upto = (
        (
            AssistantRun.objects.filter(
                conversation=conversation, status=AssistantRun.Status.COMPLETED, reply_message__isnull=False
            )
            .filter(response_id=conversation.last_response_id)
            .values_list("reply_message__seq", flat=True)
            .first()
        )
        if conversation.last_response_id
        else None
    )
    previous_response_id = conversation.last_response_id if seen_upto is not None else ""
    unseen = list(up_to_trigger.filter(seq__gt=seen_upto or 0).order_by("seq")) if seen_upto is not None else recent
    last_reply = next((m for m in reversed(recent) if m.sender == Sender.ASSISTANT), None)
    if last_reply is None and len(recent) == limit:
        last_reply = up_to_trigger.filter(sender=Sender.ASSISTANT).order_by("-seq").first()
    return TurnContext(
        conversation=conversation,
        contact=conversation.contact,
        message=message,
        locale=conversation.contact.locale,
        history=_items(recent),
        unseen=_items(unseen),
        previous_response_id=previous_response_id,
        tools=tools.all(),
        last_reply_metadata=last_reply.metadata if last_reply is not None else {},
    )


def _items(messages: list[Message]) -> list[HistoryItem]:
    items = []
    for message in messages:
        if not message.text or message.sender == Sender.SYSTEM:
            continue
        if message.sender == Sender.CONTACT:
            items.append(HistoryItem("user", message.text))
        elif message.sender == Sender.AGENT:
            name = message.agent.get_full_name() or message.agent.get_username() if message.agent else "agent"
            items.append(HistoryItem("assistant", f"[{name}, a person on the team] {message.text}"))
        else:
            items.append(HistoryItem("assistant", message.text))
    return items


def tool_citations(run: AssistantRun) -> list[dict[str, str]]:
    """The sources the run's tools looked up (a tool output's `citations`), each page once, in order."""
    return citations_of(
        list(run.tool_calls.filter(status=ToolCall.Status.OK).order_by("created").values_list("output", flat=True))
    )


# The statuses the assistant's reply may still be stored in: queued too, for the reply that tells the
# contact a person is coming (its own request_human call queued the conversation during the turn).
ASSISTANT_SPEAKS_IN = (ConversationStatus.BOT, ConversationStatus.QUEUED)


def _reply(
    run: AssistantRun, result: EngineResult, citations: list[dict[str, str]], reply_id: UUID
) -> AssistantRun | None:
    metadata = {**result.metadata, "run": str(run.pk)}
    if result.response_id:
        metadata["response_id"] = result.response_id  # the model response that wrote it
    if "citations" not in metadata and citations:
        metadata["citations"] = citations  # a model engine answered from what the tools found
    # The reply and the run's outcome commit together, or neither does: a worker killed in between
    # leaves a run that a recovery answers once, never a reply without its completed run. The run is
    # completed first, naming the reply by the id it is about to get (foreign keys are checked at
    # commit): that one conditional UPDATE is also the check that this execution still holds the run.
    with transaction.atomic():
        if finish(run, AssistantRun.Status.COMPLETED, reply_message_id=reply_id, **_usage(result)) is None:
            return None
        try:
            # Not once a person has the conversation (taken over while the engine was thinking): they
            # answer now. The same conditional UPDATE that numbers the message checks it.
            inbox.send(
                run.conversation,
                result.text,
                sender=Sender.ASSISTANT,
                metadata=metadata,
                message_id=reply_id,
                statuses=ASSISTANT_SPEAKS_IN,
            )
        except inbox.ConversationClosedError:
            # Still ours: this transaction holds the row it just completed.
            error = "The conversation was closed, or taken over by a person, during the turn."
            AssistantRun.objects.filter(pk=run.pk).update(
                status=AssistantRun.Status.SKIPPED, reply_message=None, error=error
            )
            run.status, run.reply_message_id, run.error = AssistantRun.Status.SKIPPED, None, error
            return run
        if result.response_id:
            Conversation.objects.filter(pk=run.conversation_id).update(last_response_id=result.response_id)
    return run


def _usage(result: EngineResult) -> dict[str, Any]:
    return {
        "model": result.model[:100],
        "response_id": result.response_id,
        "rounds": result.rounds,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "total_tokens": result.input_tokens + result.output_tokens,
    }


def _still_held(run: AssistantRun) -> bool:
    """Lock the run for the rest of the transaction if this execution still holds it."""
    if _held(run).select_for_update().values_list("pk", flat=True).first() is not None:
        return True
    logger.warning(
        "Turn for message %s was taken over after its worker was presumed dead; this execution stores nothing",
        run.trigger_message_id,
    )
    return False


def fallback_text(locale: str) -> str:
    with translation.override(locale):
        return gettext(
            "Sorry, I can't answer right now. Would you like me to put you in touch with a person from the team?"
        )


def _fall_back(run: AssistantRun, context: TurnContext, error: str) -> AssistantRun | None:
    """A polite reply in the contact's language, and a failed run that says why."""
    logger.warning("Turn for message %s failed: %s", run.trigger_message_id, error)
    with transaction.atomic():
        if not _still_held(run):
            return None
        try:
            reply = inbox.send(
                run.conversation,
                fallback_text(context.locale),
                sender=Sender.ASSISTANT,
                metadata={"fallback": True, "run": str(run.pk)},
            )
        except inbox.ConversationClosedError:
            reply = None
        run.reply_message = reply
        run.save(update_fields=["reply_message"])
        return finish(run, AssistantRun.Status.FAILED, error)


def _release(run: AssistantRun, error: str) -> None:
    """Hand the run back as pending so the retried task can claim it again."""
    _held(run).update(
        status=AssistantRun.Status.PENDING,
        worker="",
        error=error[:2000],
        queued_at=timezone.now(),
        updated=timezone.now(),
    )


def finish(run: AssistantRun, status: str, error: str = "", **outcome: Any) -> AssistantRun | None:
    """Record the run's outcome, if this execution still holds it (None when it was taken over).

    One UPDATE with the engine, prompt version and `outcome` (the reply, usage) as well.
    """
    now = timezone.now()
    latency_ms = int((now - run.started_at).total_seconds() * 1000) if run.started_at else None
    fields = {
        "status": status,
        "error": error[:2000],
        "finished_at": now,
        "latency_ms": latency_ms,
        "updated": now,
        "engine": run.engine,
        "previous_response_id": run.previous_response_id,
        "prompt_version": run.prompt_version,
        **outcome,
    }
    held = {"id": run.pk, "status": AssistantRun.Status.RUNNING, "worker": run.worker, "started_at": run.started_at}
    if not statements.update(AssistantRun, fields, held):  # what _held(run).update(**fields) would do
        logger.warning(
            "Turn for message %s was taken over; its outcome %s is not recorded", run.trigger_message_id, status
        )
        return None
    for name, value in fields.items():
        setattr(run, name, value)
    metrics.turn_finished(run.engine, status, latency_ms)
    logger.info("Turn for message %s finished as %s %s", run.trigger_message_id, status, error)
    return run
