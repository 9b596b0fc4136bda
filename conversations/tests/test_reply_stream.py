"""The ReplyStream a turn hands to a model engine: what the `message.delta` pushes add up to, how often
they go out, and how a reply that is not kept is withdrawn. Real pushes through the Redis channel layer."""

from __future__ import annotations

from uuid import uuid4

import pytest
from asgiref.sync import sync_to_async

from conversations import inbox
from conversations.assistant.streaming import ReplyStream, streams_replies
from conversations.models import Sender
from conversations.tests.console_helpers import console_socket, next_of, ready

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    """A clock the test moves by hand, so that coalescing is checked without timing anything."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def received(listener) -> list[dict]:
    events = []
    while (event := listener.receive(timeout=1)) is not None:
        events.append(event)
    return events


def deltas_of(events: list[dict]) -> list[tuple[int, str, bool]]:
    return [(event["seq"], event["text"], event["reset"]) for event in events if event["type"] == "message.delta"]


@pytest.fixture
def conversation():
    return inbox.receive("web", "reply-stream-0001", "Hola").conversation


def test_pieces_are_coalesced_and_add_up_to_the_stripped_reply(conversation, listen):
    pushes = listen(conversation.group_name)
    clock = Clock()
    reply_id = uuid4()
    stream = ReplyStream(conversation, reply_id, interval=0.05, clock=clock)

    for piece in ["\n ", "Hola", ",", " Lucía", ".", "\n"]:
        stream.write(piece)  # all within one interval: only the first goes out at once
    clock.now = 0.06
    stream.write(" ¿Algo")
    stream.write(" más? \n")
    stream.finish(kept=True)

    events = received(pushes)
    assert deltas_of(events) == [(1, "Hola", False), (2, ", Lucía.\n ¿Algo", False), (3, " más?", False)]
    assert {event["stream"] for event in events} == {str(reply_id)}
    assert {event["conversation_id"] for event in events} == {str(conversation.pk)}


def test_text_before_a_tool_call_is_withdrawn_by_the_next_delta(conversation, listen):
    pushes = listen(conversation.group_name)
    stream = ReplyStream(conversation, uuid4(), interval=0)

    stream.write("Voy a buscarlo")
    stream.restart()  # the model called a tool after all
    stream.write(" Abrimos a las 9.")
    stream.finish(kept=True)

    assert deltas_of(received(pushes)) == [(1, "Voy a buscarlo", False), (2, "Abrimos a las 9.", True)]


def test_a_reply_not_kept_is_withdrawn_once_and_nothing_is_sent_when_nothing_was_shown(conversation, listen):
    pushes = listen(conversation.group_name)
    shown = ReplyStream(conversation, uuid4(), interval=0)
    unseen = ReplyStream(conversation, uuid4(), interval=0)

    shown.write("Abrimos de")
    shown.finish(kept=False)
    shown.finish(kept=False)
    unseen.write("  ")
    unseen.finish(kept=False)

    assert deltas_of(received(pushes)) == [(1, "Abrimos de", False), (2, "", True)]


def test_only_channels_that_can_show_it_stream(conversation, settings):
    whatsapp = inbox.receive("whatsapp", "whatsapp:+34600000001", "Hola").conversation

    assert streams_replies(conversation) is True
    assert streams_replies(whatsapp) is False
    settings.TALIA_STREAM_REPLIES = False
    assert streams_replies(conversation) is False


async def test_a_supervisor_watching_the_conversation_gets_the_stored_reply_not_the_deltas(make_agent):
    received = await sync_to_async(inbox.receive)("web", "reply-stream-0002", "Hola")
    conversation = received.conversation
    boss = await sync_to_async(make_agent)("boss", is_staff=True)
    console = await ready(await sync_to_async(console_socket)(boss))
    await console.send_json_to({"type": "watch", "conversation_id": str(conversation.pk)})
    assert (await next_of(console, "watching"))["conversation_id"] == str(conversation.pk)
    reply_id = uuid4()
    stream = ReplyStream(conversation, reply_id, interval=0)

    await sync_to_async(stream.write)("Abrimos a las 9.")
    await sync_to_async(stream.finish)(kept=True)
    await sync_to_async(inbox.send)(conversation, "Abrimos a las 9.", sender=Sender.ASSISTANT, message_id=reply_id)

    event = await next_of(console, "message.new")
    assert event["message"]["id"] == str(reply_id)
    # The delta, pushed first, was dropped by the console's socket, which stays open.
    await console.send_json_to({"type": "ping"})
    assert await console.receive_json_from(timeout=5) == {"type": "pong"}
    await console.disconnect()
