"""Taking a conversation from the assistant before anyone asked for a person, and the reverse."""

from __future__ import annotations

import pytest

from conversations import events, inbox, state
from conversations.models import AgentAssignment, AssistantRun, ConversationStatus, Event, Message, Sender
from conversations.tests.console_helpers import api, signed_in
from talia.testing.fake_openai import slow, text
from talia.testing.plugin import wait_for


@pytest.fixture
def with_assistant(db):
    return inbox.receive("web", "takeover-session-01", "Hola, miro precios de ortodoncia", assistant_turn=False)


def test_an_agent_takes_over_from_the_assistant_and_the_visitor_is_told(
    with_assistant, make_agent, listen, django_capture_on_commit_callbacks
):
    conversation = with_assistant.conversation
    ana, bruno = make_agent("ana", first_name="Ana"), make_agent("bruno")
    room = listen(conversation.group_name)

    queue_page = signed_in(ana).get("/console/").content.decode()
    page = signed_in(ana).get(f"/console/conversations/{conversation.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # the pushes go after commit
        taken = api(signed_in(ana), conversation, "take-over")
    late = api(signed_in(bruno), conversation, "take-over")

    assert "miro precios de ortodoncia" in queue_page  # listed "with the assistant"
    assert 'data-action="take-over"' in page
    assert taken.status_code == 200 and taken.json()["conversation"]["status"] == ConversationStatus.AGENT
    assert late.status_code == 409 and late.json()["error"]["code"] == "already_claimed"
    assert "Ana" in late.json()["error"]["message"]
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent_id) == (ConversationStatus.AGENT, ana.pk)
    assert AgentAssignment.objects.get(conversation=conversation).agent_id == ana.pk
    [event] = Event.objects.filter(conversation=conversation, name=events.TAKEN_OVER.name)
    assert event.payload == {"agent_id": ana.pk}
    pushed = room.receive()
    assert pushed is not None and (pushed["type"], pushed["agent_name"]) == ("handoff.accepted", "Ana")

    # She answers; handing back gives it to the assistant again.
    assert api(signed_in(ana), conversation, "messages", {"text": "Hola, soy Ana"}).status_code == 201
    assert api(signed_in(ana), conversation, "hand-back").status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.BOT


def test_a_queued_conversation_taken_over_is_simply_claimed(with_assistant, make_agent):
    conversation = with_assistant.conversation
    state.request_handoff(conversation, requested_by="contact")

    taken = api(signed_in(make_agent("ana")), conversation, "take-over")

    assert taken.status_code == 200
    assert Event.objects.filter(conversation=conversation, name=events.AGENT_ASSIGNED.name).exists()


def test_a_closed_conversation_cannot_be_taken_over(with_assistant, make_agent):
    conversation = with_assistant.conversation
    state.close_conversation(conversation, ended_by="contact")

    refused = api(signed_in(make_agent("ana", is_staff=True)), conversation, "take-over")

    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_with_assistant"


def test_the_assistants_reply_is_not_sent_once_a_person_took_over_mid_turn(celery_worker, model_engine, make_agent):
    model_engine.when(lambda body: True, slow(3.0, text("Soy el asistente: la ortodoncia cuesta...")))
    received = inbox.receive("web", "takeover-session-02", "¿Cuánto cuesta la ortodoncia?")
    wait_for(lambda: model_engine.requests)  # the engine is thinking

    state.take_over(received.conversation, make_agent("ana"))

    run = wait_for(
        lambda: (
            AssistantRun.objects.filter(trigger_message=received.message)
            .exclude(status__in=[AssistantRun.Status.PENDING, AssistantRun.Status.RUNNING])
            .first()
        ),
        timeout=20,
    )
    assert run.status == AssistantRun.Status.SKIPPED and "taken over" in run.error
    assert not Message.objects.filter(conversation=received.conversation, sender=Sender.ASSISTANT).exists()
