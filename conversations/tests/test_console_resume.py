"""The console asks for what its socket missed (`resume`): a gap in seq or silence while a reply is due."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations import inbox, state
from conversations.models import Sender
from conversations.tests.console_helpers import console_socket, next_of, ready

pytestmark = pytest.mark.django_db(transaction=True)


def queued_conversation(session: str, *texts: str):
    received = inbox.receive("web", session, texts[0])
    for text in texts[1:]:
        inbox.send(received.conversation, text, sender=Sender.ASSISTANT)
    state.request_handoff(received.conversation, requested_by="contact")
    return received.conversation


async def test_resume_sends_the_messages_after_the_last_seq_seen_in_order(make_agent):
    conversation = await sync_to_async(queued_conversation)("resume-session-01", "Hola", "¡Hola!", "¿En qué te ayudo?")
    ana = await sync_to_async(make_agent)("ana")
    socket = await ready(await sync_to_async(console_socket)(ana))

    await socket.send_json_to({"type": "resume", "conversation_id": str(conversation.pk), "after": 1})

    first, second = await next_of(socket, "message.new"), await next_of(socket, "message.new")
    assert [first["message"]["seq"], second["message"]["seq"]] == [2, 3]
    assert (first["conversation_id"], second["message"]["text"]) == (str(conversation.pk), "¿En qué te ayudo?")
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}  # nothing else was sent
    await socket.disconnect()


async def test_resume_of_a_conversation_the_agent_may_not_watch_is_refused(make_agent):
    conversation = await sync_to_async(queued_conversation)("resume-session-02", "Hola", "¡Hola!")
    ana, bea = await sync_to_async(make_agent)("ana"), await sync_to_async(make_agent)("bea")
    await sync_to_async(state.claim_conversation)(conversation, bea)  # now Bea's, not Ana's
    socket = await ready(await sync_to_async(console_socket)(ana))

    await socket.send_json_to({"type": "resume", "conversation_id": str(conversation.pk), "after": 0})
    assert (await socket.receive_json_from(timeout=5))["error"]["code"] == "forbidden"
    await socket.send_json_to({"type": "resume", "conversation_id": "not-a-uuid", "after": 0})
    assert (await socket.receive_json_from(timeout=5))["error"]["code"] == "forbidden"
    await socket.disconnect()


@pytest.mark.parametrize("after", [-1, "3", 1.5, True, None])
async def test_resume_needs_a_whole_seq(make_agent, after):
    conversation = await sync_to_async(queued_conversation)("resume-session-03", "Hola")
    socket = await ready(await sync_to_async(console_socket)(await sync_to_async(make_agent)("ana")))

    await socket.send_json_to({"type": "resume", "conversation_id": str(conversation.pk), "after": after})

    assert (await socket.receive_json_from(timeout=5))["error"]["code"] == "invalid"
    await socket.disconnect()
