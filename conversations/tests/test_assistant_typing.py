"""The assistant's typing indicator (realtime.AssistantTyping): a turn that ends within the grace sends
no typing push at all, one that outlasts it sends "typing" then "stopped", never in the other order, and
both before the reply. Real pushes through the Redis channel layer; the grace is set by hand so that
nothing depends on how fast the machine is."""

from __future__ import annotations

import pytest

from conversations import inbox, realtime
from conversations.assistant import turns
from conversations.models import conversation_group

pytestmark = pytest.mark.django_db(transaction=True)


def received(listener) -> list[dict]:
    events = []
    while (event := listener.receive(timeout=1)) is not None:
        events.append(event)
    return events


def test_a_turn_shorter_than_the_grace_sends_the_reply_and_no_typing_push(listen, monkeypatch):
    monkeypatch.setattr(realtime, "TYPING_GRACE_S", 60.0)
    message = inbox.receive("web", "typing-quick-0001", "Hola").message
    listener = listen(conversation_group(message.conversation_id))
    run = turns.run_turn(message.pk)
    assert run is not None and run.reply_message_id is not None
    events = received(listener)
    assert [event["type"] for event in events] == ["message.new"]
    assert events[0]["message"]["id"] == str(run.reply_message_id)


def test_typing_that_went_out_is_stopped_after_it(listen, monkeypatch):
    monkeypatch.setattr(realtime, "TYPING_GRACE_S", 0.0)
    conversation = inbox.receive("web", "typing-slow-0001", "Hola").conversation
    listener = listen(conversation.group_name)
    typing = realtime.AssistantTyping(conversation.id, conversation.group_name)
    typing.start()
    shown = listener.receive(timeout=10)  # waits for the push: the turn has outlasted the grace
    typing.stop()
    assert shown == realtime.typing(conversation.id, "assistant", True)
    assert received(listener) == [realtime.typing(conversation.id, "assistant", False)]


def test_typing_stopped_before_the_grace_is_never_sent(listen, monkeypatch):
    monkeypatch.setattr(realtime, "TYPING_GRACE_S", 60.0)
    conversation = inbox.receive("web", "typing-never-0001", "Hola").conversation
    listener = listen(conversation.group_name)
    typing = realtime.AssistantTyping(conversation.id, conversation.group_name)
    typing.start()
    typing.stop()
    typing.stop()  # twice, as a `finally` after an early return might: still nothing
    assert received(listener) == []
