"""What a turn reads of its conversation (turns.recent_messages): the history window, whether the contact
wrote after the trigger, and what that costs in statements."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import inbox
from conversations.assistant import turns
from conversations.models import AssistantRun, Conversation, Message, Sender

SESSION = "session-history-0001"


def exchange(pairs: int) -> Conversation:
    """`pairs` contact messages, each answered by the assistant: seq 1 .. 2 * pairs."""
    conversation = None
    for i in range(pairs):
        conversation = inbox.receive("web", SESSION, f"question {i}").conversation
        inbox.send(conversation, f"answer {i}", sender=Sender.ASSISTANT)
    assert conversation is not None
    return conversation


def run_of(message: Message) -> AssistantRun:
    """The message's run with what its claim reads along (turns.claim_run)."""
    return AssistantRun.objects.select_related("trigger_message", "conversation__contact").get(trigger_message=message)


def texts(messages: list[Message]) -> list[str]:
    return [message.text for message in messages]


def test_the_window_is_the_last_messages_up_to_the_trigger_in_one_statement(db):
    conversation = exchange(6)
    trigger = inbox.receive("web", SESSION, "question 6").message  # seq 13

    run = run_of(trigger)
    with CaptureQueriesContext(connection) as statements:
        recent, newer = turns.recent_messages(run, 4)

    assert [m.seq for m in recent] == [10, 11, 12, 13]
    assert texts(recent) == ["answer 4", "question 5", "answer 5", "question 6"]
    assert all(m.conversation_id == conversation.pk for m in recent)
    assert newer is False
    assert len(statements) == 1


def test_a_conversation_shorter_than_the_window_is_read_whole(db):
    exchange(1)
    trigger = inbox.receive("web", SESSION, "question 1").message  # seq 3

    recent, newer = turns.recent_messages(run_of(trigger), 8)

    assert texts(recent) == ["question 0", "answer 0", "question 1"]
    assert newer is False


def test_a_message_after_the_trigger_is_seen(db):
    exchange(3)
    trigger = inbox.receive("web", SESSION, "question 3").message  # seq 7
    inbox.receive("web", SESSION, "are you there?")

    recent, newer = turns.recent_messages(run_of(trigger), 4)

    assert [m.seq for m in recent] == [4, 5, 6, 7]
    assert newer is True


@pytest.mark.parametrize("limit", [4, 30])
def test_more_messages_after_the_trigger_than_the_slack_still_give_the_whole_window(db, limit):
    exchange(3)
    trigger = inbox.receive("web", SESSION, "question 3").message  # seq 7
    for i in range(turns.HISTORY_SLACK + 2):
        inbox.receive("web", SESSION, f"later {i}")

    recent, newer = turns.recent_messages(run_of(trigger), limit)

    expected = list(Message.objects.filter(conversation_id=trigger.conversation_id, seq__lte=7).order_by("seq"))
    assert [m.seq for m in recent] == [m.seq for m in expected][-limit:]
    assert newer is True


def test_missing_numbers_fall_back_to_the_last_messages_before_the_trigger(db):
    exchange(5)
    trigger = inbox.receive("web", SESSION, "question 5").message  # seq 11
    Message.objects.filter(conversation_id=trigger.conversation_id, seq__in=[9, 10]).delete()

    recent, newer = turns.recent_messages(run_of(trigger), 4)

    assert [m.seq for m in recent] == [6, 7, 8, 11]
    assert newer is False


def test_a_persons_message_in_the_window_carries_their_name(db):
    agent = get_user_model().objects.create_user("ana", first_name="Ana", last_name="Ruiz")
    conversation = exchange(1)
    inbox.send(conversation, "I am here too", sender=Sender.AGENT, agent=agent)
    trigger = inbox.receive("web", SESSION, "thanks").message

    run = run_of(trigger)
    with CaptureQueriesContext(connection) as statements:
        context = turns.build_context(run, turns.recent_messages(run, 8)[0], 8)

    assert [item.text for item in context.history] == [
        "question 0",
        "answer 0",
        "[Ana Ruiz, a person on the team] I am here too",
        "thanks",
    ]
    assert len(statements) == 2  # the window, and the names of the people in it
