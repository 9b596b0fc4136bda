"""The queue over time and what agents read: the queue timeout fallback, and model-written summaries."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from conversations import events, handoff, inbox, state
from conversations.assistant import summaries
from conversations.models import (
    AssistantRun,
    ConversationStatus,
    ConversationSummary,
    Event,
    HandoffRequest,
    Message,
    Sender,
)
from conversations.tasks import expire_queued_handoffs
from conversations.tests.console_helpers import api, signed_in
from talia.testing.fake_openai import error, text
from talia.testing.plugin import wait_for


def queued_for(minutes: int, session: str = "waiting-session-01", locale: str = "es"):
    """A conversation that asked for a person `minutes` ago and is still waiting."""
    received = inbox.receive("web", session, "Quiero hablar con una persona", locale=locale)
    request = state.request_handoff(received.conversation, requested_by="contact")
    HandoffRequest.objects.filter(pk=request.pk).update(created=timezone.now() - timedelta(minutes=minutes))
    return received.conversation


@override_settings(TALIA_QUEUE_TIMEOUT_S=600)
def test_nobody_claims_it_in_time_and_the_assistant_takes_over_again(celery_worker, listen):
    conversation = queued_for(minutes=11)
    fresh = queued_for(minutes=2, session="waiting-session-02")
    room = listen(conversation.group_name)

    expire_queued_handoffs.delay()

    wait_for(lambda: HandoffRequest.objects.filter(status=HandoffRequest.Status.EXPIRED).exists())
    conversation.refresh_from_db()
    fresh.refresh_from_db()
    assert (conversation.status, fresh.status) == (ConversationStatus.BOT, ConversationStatus.QUEUED)
    assert Event.objects.filter(conversation=conversation, name=events.HANDOFF_EXPIRED.name).count() == 1
    told = Message.objects.filter(conversation=conversation, metadata__kind="queue_timeout").get()
    assert told.sender == Sender.ASSISTANT
    assert told.text.startswith("Nadie del equipo ha podido")  # in the contact's language
    pushed = [room.receive() for _ in range(2)]
    assert {event["type"] for event in pushed if event} == {"handoff.expired", "message.new"}

    # The assistant answers the contact's next message again.
    later = inbox.receive("web", "waiting-session-01", "Vale, ¿cuál es vuestro horario?")
    run = wait_for(
        lambda: AssistantRun.objects.filter(trigger_message=later.message, status=AssistantRun.Status.COMPLETED).first()
    )
    assert run.reply_message is not None


@override_settings(TALIA_QUEUE_TIMEOUT_S=600)
def test_the_timeout_message_is_in_english_for_an_english_contact(db):
    conversation = queued_for(minutes=30, session="waiting-session-en", locale="en")

    assert handoff.expire_stale_handoffs() == [str(conversation.pk)]

    told = Message.objects.get(conversation=conversation, metadata__kind="queue_timeout")
    assert told.text.startswith("Nobody from the team could join")


@override_settings(TALIA_QUEUE_TIMEOUT_S=0)
def test_with_no_timeout_a_conversation_waits_for_a_person(db):
    conversation = queued_for(minutes=600)

    assert handoff.expire_stale_handoffs() == []
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.QUEUED


@override_settings(TALIA_QUEUE_TIMEOUT_S=600)
def test_a_claimed_conversation_is_never_expired(db, make_agent):
    conversation = queued_for(minutes=30)
    state.claim_conversation(conversation, make_agent("ana"))

    assert handoff.expire_stale_handoffs() == []
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.AGENT


# --- Summaries written by the model engine ------------------------------------------------------------


def summary_json(summary: str, *topics: str) -> str:
    return json.dumps({"summary": summary, "topics": list(topics)})


def is_summary_request(body: dict) -> bool:
    return "conversation_summary" in json.dumps(body.get("text") or body.get("response_format") or {})


@pytest.fixture
def model(model_engine):
    """The fake model: `summarizes(reply)` scripts the summary call; every assistant turn gets a short answer."""

    def summarizes(reply):
        model_engine.when(is_summary_request, reply)
        model_engine.when(lambda body: not is_summary_request(body), text("Claro, te ayudo."))
        return model_engine

    return summarizes


@pytest.mark.parametrize("model_engine", ["openai", "openai-chat"], indirect=True)
def test_the_model_writes_the_handoff_brief(celery_worker, model, make_agent):
    fake = model(text(summary_json("Quiere cambiar la entrega del pedido 1234 al viernes.", "entrega", "pedido 1234")))
    received = inbox.receive("web", "brief-session-01", "Quiero cambiar la entrega del pedido 1234 al viernes")
    wait_for(lambda: Message.objects.filter(conversation=received.conversation, sender=Sender.ASSISTANT).exists())

    request = state.request_handoff(received.conversation, requested_by="contact", reason="Asked for a person")

    wait_for(lambda: HandoffRequest.objects.get(pk=request.pk).brief_summary)
    request.refresh_from_db()
    assert request.brief_summary == "Quiere cambiar la entrega del pedido 1234 al viernes."
    assert request.brief_topics == ["entrega", "pedido 1234"]
    call = next(r.body for r in fake.requests if is_summary_request(r.body))
    sent = json.dumps(call, ensure_ascii=False)
    assert "Contact: Quiero cambiar la entrega del pedido 1234 al viernes" in sent
    assert "<<<TRANSCRIPT" in sent and "Spanish" in sent
    page = signed_in(make_agent("ana")).get(f"/console/conversations/{received.conversation.pk}/")
    assert "Quiere cambiar la entrega del pedido 1234 al viernes." in page.content.decode()


def test_the_model_writes_the_closing_summary(celery_worker, model, make_agent):
    model(text(summary_json("Pidió el horario; se le dio.", "horario")))
    with transaction.atomic():  # queued before the worker could answer
        with_ana = inbox.receive("web", "summary-session-01", "¿Cuál es el horario?").conversation
        state.request_handoff(with_ana, requested_by="contact")
    ana = make_agent("ana")
    client = signed_in(ana)
    api(client, with_ana, "claim")
    api(client, with_ana, "messages", {"text": "De 9 a 18 h."})

    api(client, with_ana, "close")

    summary = wait_for(lambda: ConversationSummary.objects.filter(conversation=with_ana).first())
    assert (summary.summary, summary.topics, summary.engine) == ("Pidió el horario; se le dio.", ["horario"], "openai")
    assert summary.ended_by == "agent"


def test_a_failing_model_leaves_an_extractive_summary(celery_worker, model):
    model(error(400, "Invalid schema for response_format 'conversation_summary'."))
    with transaction.atomic():  # closed before the worker could answer
        conversation = inbox.receive("web", "summary-session-02", "Necesito una factura del mes pasado").conversation
        state.close_conversation(conversation, ended_by="contact")

    summary = wait_for(lambda: ConversationSummary.objects.filter(conversation=conversation).first())
    assert summary.engine == "extractive"
    assert "Necesito una factura del mes pasado" in summary.summary


def test_a_summary_that_breaks_the_schema_is_not_stored_as_written(celery_worker, model):
    model(text("Sure! Here is a summary: the contact wants an invoice."))
    with transaction.atomic():
        conversation = inbox.receive("web", "summary-session-03", "Necesito una factura").conversation
        state.close_conversation(conversation, ended_by="contact")

    summary = wait_for(lambda: ConversationSummary.objects.filter(conversation=conversation).first())
    assert summary.engine == "extractive"


# --- The conversation's language and meaningful topics ----------------------------------------------------


def test_topics_are_meaningful_words_not_names_addresses_or_filler():
    said = [
        "Hola, soy Lucía Pérez de Textiles Gómez, quiero saber el precio del blanqueamiento",
        "Mi correo es lucia.perez@example.com y mi teléfono +34 600 123 456",
        "¿El blanqueamiento duele? Gracias, por favor, y sobre el blanqueamiento, ¿hacéis ortodoncia?",
    ]

    topics = summaries.topics_of(said, ["Lucía Pérez", "Textiles Gómez", "Clínica Sonrisas"])

    assert topics[0] == "blanqueamiento"
    assert {"precio", "ortodoncia"} <= set(topics)
    assert not {"lucía", "pérez", "textiles", "gómez", "example", "perez", "correo", "gracias", "favor"} & set(
        topics
    ), topics
    assert not any(any(ch.isdigit() for ch in topic) for topic in topics)


def test_an_english_conversation_is_summed_up_in_english_without_the_contacts_name(db, make_agent):
    # The team's language is Spanish (LANGUAGE_CODE); the conversation is in English.
    received = inbox.receive(
        "web", "summary-session-en", "Hi, I am Peter Walsh and I need a dental implant quote", locale="en"
    )
    received.contact.full_name = "Peter Walsh"
    received.contact.save(update_fields=["full_name"])
    inbox.receive("web", "summary-session-en", "Is the implant quote free?", locale="en")
    state.request_handoff(received.conversation, requested_by="contact")

    page = signed_in(make_agent("ana")).get(f"/console/conversations/{received.conversation.pk}/").content.decode()
    state.close_conversation(received.conversation, ended_by="contact")
    summary = summaries.store_summary(str(received.conversation.pk))

    assert "First asked: “Hi, I am Peter Walsh" in page  # the brief, in the conversation's language
    assert summary is not None and summary.summary.startswith("First asked:")
    assert summary.topics[:2] == ["implant", "quote"]
    assert not {"peter", "walsh"} & set(summary.topics)


@pytest.mark.parametrize("model_engine", ["openai"], indirect=True)
def test_the_model_is_asked_to_sum_up_in_the_conversations_language(celery_worker, model):
    fake = model(text(summary_json("Wants an implant quote.", "implant")))
    with transaction.atomic():
        conversation = inbox.receive("web", "summary-session-en2", "I need an implant quote", locale="en").conversation
        state.close_conversation(conversation, ended_by="contact")

    summary = wait_for(lambda: ConversationSummary.objects.filter(conversation=conversation).first())
    call = next(r.body for r in fake.requests if is_summary_request(r.body))
    sent = json.dumps(call, ensure_ascii=False)
    assert "Write in English" in sent and "never people's or companies' names" in sent
    assert summary.summary == "Wants an implant quote."
