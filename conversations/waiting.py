"""Waiting for the assistant's reply without holding a thread: listen on the conversation's group.

For the doors that hold their request open until the reply (ChannelSpec.waits_for_reply): the web REST
API today, the voice gather next. Called from HTTP views, whose request cycle manages database
connections (hence sync_to_async, not Channels' database_sync_to_async).

Slow is a state, not an error: whatever happens to the channel layer while we wait (a timeout, Redis
gone, a dropped push), the answer is the database's, and no reply there yet means "pending" (202),
never a 500. The push only lets us answer sooner. While the Redis breaker (talia.redis_client) is
open, the channel layer is not even tried: the database alone answers, at once.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from conversations.models import Message, Sender
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
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        # Subscribed first, then looked: a reply stored in between is found here, not missed.
        reply = await lookup(conversation_id, after_seq)
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
                reply = message
        # One last look: a reply whose push was lost (or came as the time ran out) is still an answer.
        return reply or await lookup(conversation_id, after_seq)
    finally:
        if not breaker.is_open():  # else the group's entry expires on its own
            try:
                await layer.group_discard(group, channel)
            except Exception as exc:
                breaker.record_failure(exc, "reply wait")
                logger.debug("Could not leave %s", group, exc_info=True)
            else:
                breaker.record_success()
