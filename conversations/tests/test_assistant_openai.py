"""The model engines through the real openai SDK, against the fake OpenAI server on a real socket."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from conversations import inbox, profile, state
from conversations.assistant import prompts, turns
from conversations.assistant.prompts import prompt_text
from conversations.models import AssistantRun, ConversationStatus, Sender, ToolCall
from conversations.tasks import run_assistant_turn
from talia.testing.fake_openai import error, text, tool_calls
from talia.testing.plugin import wait_for


def visitor_says(words: str, *, session: str = "session-openai-01", locale: str = "es") -> inbox.Received:
    return inbox.receive("web", session, words, locale=locale)


def consented(received: inbox.Received) -> inbox.Received:
    received.contact.consent_given_at = received.message.created
    received.contact.save(update_fields=["consent_given_at"])
    return received


def replies(conversation) -> list[str]:
    return list(conversation.messages.filter(sender=Sender.ASSISTANT).values_list("text", flat=True))


def test_two_parallel_tool_calls_in_one_round(db, model_engine):
    received = consented(visitor_says("Soy Lucía Pérez, lucia@example.com"))
    model_engine.script(
        tool_calls(("set_full_name", {"full_name": "Lucía Pérez"}), ("set_email", {"email": "lucia@example.com"})),
        text("¡Gracias, Lucía! Ya tengo tu nombre y tu correo."),
    )

    run = turns.run_turn(received.message.pk)

    assert run is not None and run.status == AssistantRun.Status.COMPLETED
    first, second = model_engine.requests_to("/responses")
    assert first.body["parallel_tool_calls"] is True
    assert first.body["instructions"].startswith(prompt_text("es"))
    sent_tools = {tool["name"]: tool for tool in first.body["tools"]}
    assert sent_tools["set_email"]["strict"] is True
    assert sent_tools["set_email"]["parameters"]["additionalProperties"] is False
    assert first.body["input"] == [{"role": "user", "content": "Soy Lucía Pérez, lucia@example.com"}]
    stored = model_engine.stored_response(second.body["previous_response_id"])
    emitted = [item["call_id"] for item in stored["output"] if item["type"] == "function_call"]
    answered = [item["call_id"] for item in second.body["input"]]
    assert answered == emitted and len(emitted) == 2
    assert set(ToolCall.objects.filter(run=run).values_list("call_id", flat=True)) == set(emitted)
    received.contact.refresh_from_db()
    assert (received.contact.full_name, received.contact.email) == ("Lucía Pérez", "lucia@example.com")
    assert replies(received.conversation) == ["¡Gracias, Lucía! Ya tengo tu nombre y tu correo."]
    assert (run.rounds, run.engine) == (1, "openai")
    assert run.prompt_version == f"{prompts.PROMPT_VERSION}+{profile.current().revision}"
    assert run.response_id and run.total_tokens == run.input_tokens + run.output_tokens > 0
    received.conversation.refresh_from_db()
    assert received.conversation.last_response_id == run.response_id


def test_a_tool_error_goes_back_to_the_model_which_recovers(db, model_engine):
    received = consented(visitor_says("mi correo es lucia@"))
    model_engine.script(
        tool_calls(("set_email", {"email": "lucia@"})), text("Creo que falta algo en tu correo. ¿Me lo repites?")
    )

    run = turns.run_turn(received.message.pk)
    assert run is not None

    output = json.loads(model_engine.requests_to("/responses")[1].body["input"][0]["output"])
    assert output["ok"] is False and "not a valid email" in output["error"]
    assert ToolCall.objects.get(run=run).status == ToolCall.Status.ERROR
    assert run.status == AssistantRun.Status.COMPLETED
    assert replies(received.conversation) == ["Creo que falta algo en tu correo. ¿Me lo repites?"]


@override_settings(TALIA_MAX_TOOL_ROUNDS=2)
def test_the_round_limit_ends_in_a_safe_reply(db, model_engine):
    received = consented(visitor_says("Trabajo en Acme"))
    model_engine.when(lambda body: True, tool_calls(("set_company_name", {"company": "Acme"})))

    run = turns.run_turn(received.message.pk)
    assert run is not None

    assert len(model_engine.requests_to("/responses")) == 3  # the first call and one per allowed round
    assert run.status == AssistantRun.Status.FAILED
    assert "2 rounds" in run.error
    assert replies(received.conversation) == [turns.fallback_text("es")]
    received.conversation.refresh_from_db()
    assert received.conversation.last_response_id == ""  # never chain from a response with open calls


def test_previous_response_id_chains_turns_and_is_rebuilt_when_the_provider_lost_it(db, model_engine):
    model_engine.script(text("¡Hola! ¿En qué te ayudo?"), text("Claro, te cuento."), text("Aquí sigo."))
    first = visitor_says("Hola")
    turns.run_turn(first.message.pk)
    second = visitor_says("¿Qué planes tenéis?")
    turns.run_turn(second.message.pk)

    chained = model_engine.requests_to("/responses")[1].body
    assert chained["previous_response_id"] == AssistantRun.objects.get(trigger_message=first.message).response_id
    assert chained["input"] == [{"role": "user", "content": "¿Qué planes tenéis?"}]
    assert chained["instructions"]  # instructions are not carried over by the chain: sent every time

    model_engine.forget_all()  # the provider expired every stored response
    third = visitor_says("¿Sigues ahí?")
    run = turns.run_turn(third.message.pk)
    assert run is not None

    lost, rebuilt = model_engine.requests_to("/responses")[2:]
    assert lost.body["previous_response_id"] == AssistantRun.objects.get(trigger_message=second.message).response_id
    assert "previous_response_id" not in rebuilt.body
    assert [item["content"] for item in rebuilt.body["input"]] == [
        "Hola", "¡Hola! ¿En qué te ayudo?", "¿Qué planes tenéis?", "Claro, te cuento.", "¿Sigues ahí?",
    ]  # fmt: skip
    assert run.status == AssistantRun.Status.COMPLETED
    assert replies(third.conversation)[-1] == "Aquí sigo."


@pytest.mark.parametrize(
    ("lost", "rebuilt"),
    [
        (error(404, message="Response with id 'resp_gone' not found."), True),
        (error(404, code="model_not_found", message="The model does not exist."), False),
    ],
)
def test_a_404_on_the_chained_call_rebuilds_unless_it_is_about_the_model(db, model_engine, lost, rebuilt):
    model_engine.script(text("¡Hola!"))
    first = visitor_says("Hola")
    turns.run_turn(first.message.pk)
    model_engine.script(lost, text("Aquí sigo."))
    second = visitor_says("¿Sigues ahí?")

    run = turns.run_turn(second.message.pk)

    assert run is not None
    if rebuilt:
        assert run.status == AssistantRun.Status.COMPLETED
        assert "previous_response_id" not in model_engine.requests_to("/responses")[-1].body
        assert replies(second.conversation)[-1] == "Aquí sigo."
    else:
        assert run.status == AssistantRun.Status.FAILED
        assert replies(second.conversation)[-1] == turns.fallback_text("es")


def test_agent_messages_reach_the_model_after_a_hand_back(db, model_engine, agent):
    model_engine.script(text("¡Hola!"), text("De nada, aquí estoy."))
    first = visitor_says("Hola")
    turns.run_turn(first.message.pk)
    state.request_handoff(first.conversation, requested_by="contact")
    state.claim_conversation(first.conversation, agent)
    inbox.send(first.conversation, "Te he enviado el presupuesto.", sender=Sender.AGENT, agent=agent)
    state.hand_back_to_assistant(first.conversation)
    later = visitor_says("Gracias")

    turns.run_turn(later.message.pk)

    chained = model_engine.requests_to("/responses")[-1].body
    assert [item["content"] for item in chained["input"]] == [
        "[Ana García, a person on the team] Te he enviado el presupuesto.",
        "Gracias",
    ]


def test_rate_limit_is_retried_after_the_time_the_provider_asks(db, model_engine):
    received = visitor_says("Hola")
    model_engine.script(error(429, retry_after=7), text("¡Hola!"))

    with pytest.raises(turns.RetryTurn) as retry:
        turns.run_turn(received.message.pk, attempt=0)

    assert retry.value.countdown == 7
    assert AssistantRun.objects.get(trigger_message=received.message).status == AssistantRun.Status.PENDING
    run = turns.run_turn(received.message.pk, attempt=1)
    assert run is not None and run.status == AssistantRun.Status.COMPLETED
    assert replies(received.conversation) == ["¡Hola!"]


def test_429_then_success_through_the_celery_task_gives_one_reply(db, model_engine):
    received = visitor_says("Hola")
    model_engine.script(error(429, retry_after=1), text("¡Hola!"))

    run_assistant_turn.apply(args=(str(received.message.pk),))  # retries run inline

    assert len(model_engine.requests_to("/responses")) == 2
    assert replies(received.conversation) == ["¡Hola!"]


@override_settings(TALIA_ASSISTANT_MAX_ATTEMPTS=2)
def test_after_the_last_try_the_contact_gets_a_polite_reply_in_their_language(db, model_engine):
    received = visitor_says("Hello", session="session-openai-en", locale="en")
    model_engine.script(error(500), error(503))

    with pytest.raises(turns.RetryTurn):
        turns.run_turn(received.message.pk, attempt=0)
    run = turns.run_turn(received.message.pk, attempt=1)

    assert run is not None and run.status == AssistantRun.Status.FAILED
    assert "503" in run.error
    assert replies(received.conversation) == [turns.fallback_text("en")]
    assert turns.fallback_text("en").startswith("Sorry")
    assert turns.fallback_text("es").startswith("Lo siento")


def test_exhausted_quota_is_not_retried(db, model_engine):
    received = visitor_says("Hola")
    model_engine.script(error(429, code="insufficient_quota", message="You exceeded your current quota."))

    run = turns.run_turn(received.message.pk, attempt=0)

    assert run is not None and run.status == AssistantRun.Status.FAILED
    assert replies(received.conversation) == [turns.fallback_text("es")]


def test_a_redelivered_task_answers_once(db, model_engine):
    received = visitor_says("Hola")
    model_engine.script(text("¡Hola!"))

    run_assistant_turn.apply(args=(str(received.message.pk),))
    run_assistant_turn.apply(args=(str(received.message.pk),))

    assert len(model_engine.requests_to("/responses")) == 1
    assert replies(received.conversation) == ["¡Hola!"]


def test_manual_mode_means_no_model_call_and_no_reply(db, model_engine, agent):
    received = visitor_says("Quiero hablar con una persona")
    state.request_handoff(received.conversation, requested_by="contact")

    run = turns.run_turn(received.message.pk)

    assert run is not None and run.status == AssistantRun.Status.SKIPPED
    assert model_engine.requests == []
    assert replies(received.conversation) == []
    received.conversation.refresh_from_db()
    assert received.conversation.status == ConversationStatus.QUEUED


def test_request_human_tool_queues_and_the_reply_still_goes_out(db, model_engine):
    received = visitor_says("Necesito hablar con alguien")
    model_engine.script(
        tool_calls(("request_human", {"reason": "Asks for a person"})), text("Te paso con una persona.")
    )

    turns.run_turn(received.message.pk)

    received.conversation.refresh_from_db()
    assert received.conversation.status == ConversationStatus.QUEUED
    assert replies(received.conversation) == ["Te paso con una persona."]


@pytest.mark.parametrize(("locale", "session"), [("es", "session-prompt-es"), ("en", "session-prompt-en")])
def test_the_prompt_file_follows_the_contact_locale(db, model_engine, locale, session):
    received = visitor_says("Hi" if locale == "en" else "Hola", session=session, locale=locale)
    model_engine.script(text("ok"))

    turns.run_turn(received.message.pk)

    instructions = model_engine.requests_to("/responses")[0].body["instructions"]
    assert instructions.startswith(prompt_text(locale))
    assert ("You are the virtual assistant" in instructions) == (locale == "en")


@pytest.mark.parametrize("model_engine", ["openai-chat"], indirect=True)
def test_chat_completions_engine_runs_the_same_tool_loop(db, model_engine):
    received = consented(visitor_says("Trabajo en Acme Ibérica"))
    model_engine.script(tool_calls(("set_company_name", {"company": "Acme Ibérica"})), text("¡Anotado!"))

    run = turns.run_turn(received.message.pk)

    first, second = model_engine.requests_to("/chat/completions")
    assert first.body["messages"][0]["role"] == "system"
    assert first.body["tools"][0]["type"] == "function" and first.body["tools"][0]["function"]["strict"] is True
    tool_message = second.body["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == second.body["messages"][-2]["tool_calls"][0]["id"]
    received.contact.refresh_from_db()
    assert received.contact.company == "Acme Ibérica"
    assert run is not None and run.engine == "openai-chat" and run.rounds == 1
    assert replies(received.conversation) == ["¡Anotado!"]


def test_a_real_worker_answers_through_the_model(celery_worker, model_engine):
    model_engine.script(text("¡Hola! Soy el asistente."))

    received = visitor_says("Hola")

    wait_for(lambda: replies(received.conversation))
    assert replies(received.conversation) == ["¡Hola! Soy el asistente."]
