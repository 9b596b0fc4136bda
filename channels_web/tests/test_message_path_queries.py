"""What one visitor message and its reply cost in SQL statements (counts, not time: see bench/ for speed).

The path: the web door stores the message (channels_web.services.post_message), a worker runs the turn
(conversations.assistant.turns.run_turn) and the door looks the reply up (conversations.waiting.find_reply).
Every statement counts, BEGIN, COMMIT and savepoints included: each is a round trip to Postgres.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_web import services
from conversations.assistant import turns
from conversations.models import AssistantRun, Message, Sender
from conversations.waiting import find_reply

pytestmark = pytest.mark.django_db(transaction=True)

VISITOR = services.Visitor(
    "queries-session-0001", ip="203.0.113.7", user_agent="Firefox", origin="https://shop.example"
)


def message_and_reply(text: str) -> tuple[int, Message]:
    """Statements for `text` and its reply, and the reply."""
    with CaptureQueriesContext(connection) as statements:
        received = services.post_message(VISITOR, text)
        turns.run_turn(received.message.pk)
        reply = find_reply(received.conversation.pk, received.message.seq)
    assert reply is not None
    return len(statements), Message.objects.get(pk=reply["id"])


@pytest.mark.parametrize(
    ("text", "searches"),
    [("Vale, muchas gracias", False), ("¿Cuánto cuesta el plan para empresas?", True)],
    ids=["a yes to the consent question", "a knowledge question"],
)
def test_a_known_visitors_message_and_its_reply_take_at_most_20_statements(text: str, searches: bool) -> None:
    # The first message: the contact, session and conversation exist from here on, and the assistant
    # has asked for consent (so "Vale..." is a yes, stored by a tool).
    message_and_reply("Hola")

    count, reply = message_and_reply(text)

    run = AssistantRun.objects.get(reply_message=reply)
    assert (reply.sender, run.status) == (Sender.ASSISTANT, AssistantRun.Status.COMPLETED)
    assert run.tool_calls.filter(name="search_knowledge").exists() == searches
    assert count <= 20


def test_a_new_visitors_first_message_and_its_reply_take_at_most_36_statements() -> None:
    """Contact, identity, session, conversation and their events are created once, on the first message."""
    count, reply = message_and_reply("Hola")

    assert reply.sender == Sender.ASSISTANT
    assert count <= 36


def test_the_counts_see_every_statement() -> None:
    """The measure itself: a plain ORM read is one statement, a transaction adds BEGIN and COMMIT."""
    from django.db import transaction

    with CaptureQueriesContext(connection) as statements, transaction.atomic():
        list(Message.objects.all()[:1])
    assert len(statements) == 3
