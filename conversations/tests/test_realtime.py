"""Fan-out goes through the real Redis channel layer, and only after the data is committed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from conversations import inbox, state
from conversations.models import WEEKDAYS, AssistantProfile, Sender
from conversations.realtime import AGENTS_GROUP, MONITOR_GROUP

pytestmark = pytest.mark.django_db(transaction=True)


def test_message_is_pushed_only_after_commit(listen):
    monitor = listen(MONITOR_GROUP)

    with transaction.atomic():
        received = inbox.receive("web", "session-rt-000001", "Hola")
        assert monitor.receive(timeout=0.5) is None  # stored but not committed: nothing may leave

    pushed = [monitor.receive(), monitor.receive()]
    by_type = {event["type"]: event for event in pushed if event}
    assert set(by_type) == {"conversation.opened", "message.new"}
    message = by_type["message.new"]["message"]
    assert message["id"] == str(received.message.pk)
    assert message["text"] == "Hola"
    assert message["seq"] == 1


def test_rolled_back_message_is_never_pushed(listen):
    monitor = listen(MONITOR_GROUP)

    with pytest.raises(RuntimeError), transaction.atomic():
        inbox.receive("web", "session-rt-000002", "Hola")
        raise RuntimeError("the request failed after storing")

    assert monitor.receive(timeout=0.5) is None


def test_conversation_group_gets_its_messages_without_private_metadata(listen, agent):
    received = inbox.receive("web", "session-rt-000003", "Hola", {"ip": "203.0.113.9", "user_agent": "Firefox"})
    room = listen(received.conversation.group_name)

    inbox.send(received.conversation, "Hola, soy Ana", sender=Sender.AGENT, agent=agent)

    event = room.receive()
    assert event["type"] == "message.new"
    assert event["message"]["agent_name"] == "Ana García"
    assert "metadata" not in event["message"]
    assert "203.0.113.9" not in str(event)


def test_handoff_and_claim_reach_queue_and_visitor(listen, agent):
    received = inbox.receive("web", "session-rt-000004", "Quiero una persona", display_name="Marta")
    conversation = received.conversation
    agents, room = listen(AGENTS_GROUP), listen(conversation.group_name)

    state.request_handoff(conversation, requested_by="contact")
    added = agents.receive()
    assert added["type"] == "queue.added"
    assert added["contact_name"] == "Marta"  # the live queue row says who is waiting
    assert added["out_of_hours"] is False  # no business hours: always open
    assert room.receive()["type"] == "handoff.requested"

    state.claim_conversation(conversation, agent)
    assert agents.receive()["type"] == "queue.removed"
    accepted = room.receive()
    assert accepted["type"] == "handoff.accepted"
    assert accepted["agent_name"] == "Ana García"
    assert accepted["status"] == "agent"


def test_a_handoff_out_of_hours_reaches_the_queue_marked(listen):
    today = timezone.localdate()
    AssistantProfile.objects.create(
        business_hours={day: [["09:00", "18:00"]] for day in WEEKDAYS},
        holidays=[(today + timedelta(days=offset)).isoformat() for offset in range(-1, 8)],
    )
    received = inbox.receive("web", "session-rt-000009", "Quiero una persona")
    agents = listen(AGENTS_GROUP)

    state.request_handoff(received.conversation, requested_by="contact")

    added = agents.receive()
    assert (added["type"], added["out_of_hours"]) == ("queue.added", True)
