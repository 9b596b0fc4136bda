"""Waiting for the assistant's reply without holding a thread: listen on the conversation's group.

For the doors that hold their request open until the reply (ChannelSpec.waits_for_reply): the web REST
API today, the voice gather next. Called from HTTP views, whose request cycle manages database
connections (hence sync_to_async, not Channels' database_sync_to_async).

A door that stores the message itself (the web REST API) listens from before the turn is queued
(ReplyListener, joined from the inbox's `on_stored` hook once the message is committed): then no
reply can come before the listener, and the database is not asked before waiting, only when no push
came in time.

Slow is a state, not an error: whatever happens to the channel layer while we wait (a timeout, Redis
gone, a dropped push), the answer is the database's, and no reply there yet means "pending" (202),
never a 500. The push only lets us answer sooner. While the Redis breaker (talia.redis_client) is
open, the channel layer is not even tried: the database alone answers, at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from conversations.models import Conversation, ConversationStatus, Message, Sender
from conversations.realtime import MessagePayload, message_payload
from talia.redis_client import breaker

logger = logging.getLogger(__name__)

REPLY_SENDERS = (Sender.ASSISTANT, Sender.AGENT)


def find_reply(conversation_id: UUID | str, after_seq: int) -> MessagePayload | None:
    """The first message the assistant or an agent sent after `after_seq`, if any yet (its public shape)."""
    message = (
        Message.objects.select_related("agent")
        .filter(conversation_id=conversation_id, seq__gt=after_seq, sender__in=REPLY_SENDERS)
        .order_by("seq")
        .first()
    )
    return message_payload(message) if message is not None else None


async def wait_for_reply(conversation_id: str, group: str, after_seq: int, timeout: float) -> MessagePayload | None:
    """The first reply after `after_seq`, or None if none is stored within `timeout` seconds.

    The reply is the push that announced it (pushed only after its commit, so it is stored), as
    realtime.message_payload() shapes it; the database is asked only when no push can tell.
    """
    lookup = sync_to_async(find_reply)
    if timeout <= 0:
        return await lookup(conversation_id, after_seq)
    if breaker.is_open():
        breaker.skipped("reply wait")
        return await lookup(conversation_id, after_seq)
    layer = get_channel_layer()
    try:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
    except Exception as exc:
        if not breaker.record_failure(exc, "reply wait"):
            logger.warning("Channel layer unavailable; not waiting for the reply", exc_info=True)
        return await lookup(conversation_id, after_seq)
    breaker.record_success()
    try:
        # Subscribed first, then looked: a reply stored in between is found here, not missed.
        reply, _pushed = await _listen(
            layer, channel, conversation_id, after_seq, timeout, await lookup(conversation_id, after_seq)
        )
        return reply
    finally:
        await _leave(layer, group, channel)


async def _listen(
    layer: Any, channel: str, conversation_id: str, after_seq: int, timeout: float, reply: MessagePayload | None = None
) -> tuple[MessagePayload | None, dict[str, Any]]:
    """`reply`, else the first reply after `after_seq` pushed to `channel` (already in the conversation's
    group) within `timeout`, else the database's; with the push that carried it ({} when none did)."""
    lookup = sync_to_async(find_reply)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while reply is None:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            event = await asyncio.wait_for(layer.receive(channel), remaining)
        except TimeoutError:
            break
        except Exception as exc:
            # redis' own TimeoutError and ConnectionError are not the builtin ones.
            if not breaker.record_failure(exc, "reply wait"):
                logger.warning("Channel layer failed while waiting for a reply; asking the database", exc_info=True)
            break
        message = event.get("message") if event.get("type") == "message.new" else None
        if message and message["sender"] in REPLY_SENDERS and message["seq"] > after_seq:
            # The first reply after `after_seq`: pushes of one conversation arrive in seq order.
            return message, event
    # One last look: a reply whose push was lost (or came as the time ran out) is still an answer.
    return reply or await lookup(conversation_id, after_seq), {}


async def _leave(layer: Any, group: str, channel: str) -> None:
    if not breaker.is_open():  # else the group's entry expires on its own
        try:
            await layer.group_discard(group, channel)
        except Exception as exc:
            breaker.record_failure(exc, "reply wait")
            logger.debug("Could not leave %s", group, exc_info=True)
        else:
            breaker.record_success()


class ReplyListener:
    """Listening for the reply to a message from before its turn is queued.

    The door passes `on_stored` to inbox.receive (through its service): inside the message's transaction
    it registers `join` to run after the commit, after the message's own push (which it need not hear)
    and ahead of its turn's enqueue (after-commit callbacks run in the order registered). `join` runs in the request's thread and adds
    a channel of this process to the conversation's group on the event loop; then `reply` only waits:
    no reply can have been pushed before the listener joined, so the database is not asked first. A
    duplicate (its transaction rolled back, the callback with it), a conversation the assistant does not
    have, or a channel layer that failed or is skipped leave it unjoined, and `reply` is then exactly
    wait_for_reply.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.layer: Any = None
        self.channel = ""
        self.group = ""
        # The push that brought the reply (realtime.MessageNew: with the conversation's `status` once the
        # reply was stored and the assistant's `response_id`), {} when the database answered.
        self.pushed: dict[str, Any] = {}

    def on_stored(self, conversation: Conversation) -> None:
        if self.timeout > 0 and conversation.status == ConversationStatus.BOT:
            group = conversation.group_name
            transaction.on_commit(lambda: self.join(group))

    def join(self, group: str) -> None:
        """Join `group` (in a thread, after the commit); on failure stay unjoined (logged, never raised)."""
        if breaker.is_open():
            return
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            self.channel = async_to_sync(self._join)(layer, group)
        except Exception as exc:
            if not breaker.record_failure(exc, "reply wait"):
                logger.warning("Channel layer unavailable; the reply will be looked for", exc_info=True)
            return
        breaker.record_success()
        self.layer, self.group = layer, group

    @staticmethod
    async def _join(layer: Any, group: str) -> str:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        return str(channel)

    async def reply(self, conversation_id: str, group: str, after_seq: int) -> MessagePayload | None:
        """The first reply after `after_seq` within the timeout, or None (wait_for_reply's contract)."""
        if self.layer is None or self.group != group:
            return await wait_for_reply(conversation_id, group, after_seq, self.timeout)
        try:
            reply, self.pushed = await _listen(self.layer, self.channel, conversation_id, after_seq, self.timeout)
            return reply
        finally:
            await _leave(self.layer, group, self.channel)
