"""The fake OpenAI server, driven through the real `openai` SDK over a real socket."""

from __future__ import annotations

import base64
import json
import math
import struct
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
from openai.types.responses import FunctionToolParam, ResponseInputParam, ResponseOutputMessage

from talia.testing import fake_openai as fake_openai_module
from talia.testing.fake_openai import (
    FakeOpenAI,
    cut,
    embedding_vector,
    error,
    last_user_text,
    slow,
    text,
    tool_calls,
)
from talia.testing.plugin import wait_for

fake_openai = fake_openai_module.fake_openai  # the fixture under test, taken from its own module (not the plugin)

MODEL = "gpt-4.1-mini"

TOOLS: list[FunctionToolParam] = [
    {
        "type": "function",
        "name": "set_email",
        "description": "Save the customer's email.",
        "parameters": {
            "type": "object",
            "properties": {"email": {"type": "string"}},
            "required": ["email"],
            "additionalProperties": False,
        },
        "strict": True,
    },
    {
        "type": "function",
        "name": "set_full_name",
        "description": "Save the customer's full name.",
        "parameters": {"type": "object", "properties": {"full_name": {"type": "string"}}},
        "strict": False,
    },
]

CHAT_TOOLS: list[ChatCompletionFunctionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "set_email",
            "parameters": {"type": "object", "properties": {"email": {"type": "string"}}},
            "strict": True,
        },
    }
]


def client_for(fake: FakeOpenAI, **options: Any) -> OpenAI:
    options.setdefault("max_retries", 0)
    return OpenAI(base_url=fake.base_url, api_key="test", **options)


def outputs_for(calls: list[Any], result: str = "saved") -> ResponseInputParam:
    return [{"type": "function_call_output", "call_id": call.call_id, "output": result} for call in calls]


def function_calls(response: Any) -> list[Any]:
    return [item for item in response.output if item.type == "function_call"]


# --- Responses -----------------------------------------------------------------------------------


def test_text_reply_arrives_as_output_text_with_real_ids_and_usage(fake_openai):
    fake_openai.script(text("Hola, ¿en qué te ayudo?"))

    raw = client_for(fake_openai).responses.with_raw_response.create(model=MODEL, instructions="Be brief", input="hola")
    response = raw.parse()

    assert raw.headers["content-type"] == "application/json"
    assert response.output_text == "Hola, ¿en qué te ayudo?"
    assert response.id.startswith("resp_")
    (message,) = response.output
    assert isinstance(message, ResponseOutputMessage) and message.id.startswith("msg_")
    assert response.status == "completed"
    assert (response.model, response.instructions, response.previous_response_id) == (MODEL, "Be brief", None)
    assert (response._request_id or "").startswith("req_")
    # Words: "Be brief" + "hola" in, "Hola, ¿en qué te ayudo?" out.
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (3, 5, 8)
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    (request,) = fake_openai.requests_to("/responses")
    assert (request.method, request.path) == ("POST", "/v1/responses")
    assert request.headers["authorization"] == "Bearer test"
    assert request.body == {"model": MODEL, "instructions": "Be brief", "input": "hola"}


def test_parallel_calls_then_chained_outputs_for_both_call_ids(fake_openai):
    fake_openai.script(
        tool_calls(("set_email", {"email": "ana@b.co"}), ("set_full_name", {"full_name": "Ana Pérez"})),
        text("Listo, Ana."),
    )
    client = client_for(fake_openai)

    first = client.responses.create(model=MODEL, input="Soy Ana Pérez, ana@b.co", tools=TOOLS)
    calls = function_calls(first)
    second = client.responses.create(model=MODEL, previous_response_id=first.id, input=outputs_for(calls), tools=TOOLS)

    assert [(call.name, json.loads(call.arguments)) for call in calls] == [
        ("set_email", {"email": "ana@b.co"}),
        ("set_full_name", {"full_name": "Ana Pérez"}),
    ]
    assert all(call.id.startswith("fc_") and call.call_id.startswith("call_") for call in calls)
    assert calls[0].call_id != calls[1].call_id
    assert first.output_text == ""
    assert second.output_text == "Listo, Ana."
    assert second.previous_response_id == first.id
    sent_first, sent_second = (request.body for request in fake_openai.requests_to("/v1/responses"))
    assert sent_first is not None and sent_second is not None
    assert [(tool["name"], tool["strict"]) for tool in sent_first["tools"]] == [
        ("set_email", True),
        ("set_full_name", False),
    ]
    assert sent_second["previous_response_id"] == first.id
    assert fake_openai.tool_outputs(sent_second) == {calls[0].call_id: "saved", calls[1].call_id: "saved"}


def test_function_tools_are_echoed_strict_unless_the_request_says_otherwise(fake_openai):
    fake_openai.script(text("ok"))
    loose = dict(TOOLS[1])
    del loose["strict"]

    response = client_for(fake_openai).responses.create(model=MODEL, input="hi", tools=[TOOLS[1], loose])  # type: ignore[list-item]

    assert [tool.strict for tool in response.tools] == [False, True]  # type: ignore[union-attr]


def test_stateless_follow_up_resending_output_items_is_accepted(fake_openai):
    fake_openai.script(tool_calls(("set_email", {"email": "a@b.co"})), text("Guardado."))
    client = client_for(fake_openai)
    history: list[Any] = [{"role": "user", "content": "a@b.co"}]

    first = client.responses.create(model=MODEL, input=history, tools=TOOLS, store=False)
    history += [*first.output, *outputs_for(function_calls(first))]
    second = client.responses.create(model=MODEL, input=history, tools=TOOLS, store=False)

    assert second.output_text == "Guardado."
    sent = fake_openai.requests_to("/v1/responses")[1].body
    assert sent is not None
    assert [item.get("type") for item in sent["input"]] == [None, "function_call", "function_call_output"]


def test_a_call_left_without_output_is_a_bad_request(fake_openai):
    fake_openai.script(tool_calls(("set_email", {"email": "a@b.co"}), ("set_full_name", {"full_name": "Ana"})))
    fake_openai.script(text("never sent"))
    client = client_for(fake_openai)
    first = client.responses.create(model=MODEL, input="Ana, a@b.co", tools=TOOLS)
    calls = function_calls(first)

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, previous_response_id=first.id, input=outputs_for(calls[:1]))

    assert caught.value.body == {
        "message": f"No tool output found for function call {calls[1].call_id}.",
        "type": "invalid_request_error",
        "param": "input",
        "code": None,
    }
    assert len(fake_openai.unused) == 1  # a rejected request consumes no scripted reply


def test_a_new_user_turn_without_the_pending_outputs_is_a_bad_request(fake_openai):
    fake_openai.script(tool_calls(("set_email", {"email": "a@b.co"})), text("never sent"))
    client = client_for(fake_openai)
    first = client.responses.create(model=MODEL, input="a@b.co", tools=TOOLS)

    with pytest.raises(openai.BadRequestError, match="No tool output found for function call call_"):
        client.responses.create(model=MODEL, previous_response_id=first.id, input="¿sigues ahí?")


def test_an_output_for_a_call_never_made_is_a_bad_request(fake_openai):
    fake_openai.script(tool_calls(("set_email", {"email": "a@b.co"})), text("never sent"))
    client = client_for(fake_openai)
    first = client.responses.create(model=MODEL, input="a@b.co", tools=TOOLS)
    bogus: ResponseInputParam = [{"type": "function_call_output", "call_id": "call_bogus", "output": "x"}]

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=MODEL, previous_response_id=first.id, input=outputs_for(function_calls(first)) + bogus
        )

    assert caught.value.body["message"] == "No tool call found for function call output with call_id call_bogus."  # type: ignore[index]


def test_unknown_previous_response_id_is_the_apis_400(fake_openai):
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(fake_openai).responses.create(model=MODEL, previous_response_id="resp_nope", input="hola")

    assert caught.value.status_code == 400
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"
    assert caught.value.message.endswith("Previous response with id 'resp_nope' not found.")


def test_stored_response_can_be_fetched_until_forgotten(fake_openai):
    fake_openai.script(text("uno"), text("dos"))
    client = client_for(fake_openai)
    first = client.responses.create(model=MODEL, input="hola")
    second = client.responses.create(model=MODEL, input="hola")

    assert client.responses.retrieve(first.id).output_text == "uno"
    fake_openai.forget(first.id)

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError, match="previous_response_not_found|not found"):
        client.responses.create(model=MODEL, previous_response_id=first.id, input="¿y?")
    assert client.responses.retrieve(second.id).output_text == "dos"
    fake_openai.forget_all()
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)


def test_store_false_responses_cannot_be_chained(fake_openai):
    fake_openai.script(text("efímero"))
    client = client_for(fake_openai)
    first = client.responses.create(model=MODEL, input="hola", store=False)

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, previous_response_id=first.id, input="¿y?")

    assert caught.value.code == "previous_response_not_found"


# --- Errors, retries, delays ---------------------------------------------------------------------


def test_429_is_a_rate_limit_error_with_retry_after(fake_openai):
    fake_openai.script(error(429, code="rate_limit_exceeded", retry_after=2))

    with pytest.raises(openai.RateLimitError) as caught:
        client_for(fake_openai).responses.create(model=MODEL, input="hola")

    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["content-type"] == "application/json"


def test_sdk_retries_a_429_after_retry_after_and_then_succeeds(fake_openai):
    fake_openai.script(error(429, retry_after=0.3), text("por fin"))
    client = client_for(fake_openai, max_retries=1)

    started = time.monotonic()
    response = client.responses.create(model=MODEL, input="hola")

    assert response.output_text == "por fin"
    assert time.monotonic() - started >= 0.3
    attempts = fake_openai.requests_to("/v1/responses")
    assert [request.headers["x-stainless-retry-count"] for request in attempts] == ["0", "1"]


def test_500_is_an_internal_server_error(fake_openai):
    fake_openai.script(error(500))

    with pytest.raises(openai.InternalServerError) as caught:
        client_for(fake_openai).responses.create(model=MODEL, input="hola")

    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"


def test_any_status_can_be_scripted_with_its_own_code_and_message(fake_openai):
    fake_openai.script(
        error(404, code="previous_response_not_found", message="Previous response with id 'resp_x' not found.")
    )

    with pytest.raises(openai.NotFoundError) as caught:
        client_for(fake_openai).responses.create(model=MODEL, input="hola")

    assert caught.value.body == {
        "message": "Previous response with id 'resp_x' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": "previous_response_not_found",
    }


def test_slow_reply_past_the_client_timeout_is_an_api_timeout(fake_openai):
    fake_openai.script(slow(3, then=text("tarde")))

    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client_for(fake_openai, timeout=0.3).responses.create(model=MODEL, input="hola")

    assert time.monotonic() - started < 2
    assert len(fake_openai.requests_to("/v1/responses")) == 1


def test_slow_reply_within_the_timeout_arrives_late(fake_openai):
    fake_openai.script(slow(0.3), text("con calma"))

    started = time.monotonic()
    response = client_for(fake_openai, timeout=5).responses.create(model=MODEL, input="hola")

    assert response.output_text == "con calma"
    assert time.monotonic() - started >= 0.3


# --- Scripting -----------------------------------------------------------------------------------


def test_a_matching_rule_wins_over_the_queue(fake_openai):
    fake_openai.script(text("de la cola"))
    fake_openai.when(
        lambda body: "@" in fake_openai.last_user_text(body), tool_calls(("set_email", {"email": "a@b.co"}))
    )
    client = client_for(fake_openai)

    with_email = client.responses.create(model=MODEL, input="mi correo es a@b.co", tools=TOOLS)
    assert [call.name for call in function_calls(with_email)] == ["set_email"]
    assert len(fake_openai.unused) == 1

    without_email = client.responses.create(model=MODEL, input="hola", tools=TOOLS)
    assert without_email.output_text == "de la cola"
    assert fake_openai.unused == []


def test_no_scripted_reply_is_a_loud_500_the_sdk_does_not_retry(fake_openai):
    with pytest.raises(openai.InternalServerError, match="fake server: no scripted reply"):
        client_for(fake_openai, max_retries=2).responses.create(model=MODEL, input="hola")

    assert len(fake_openai.requests) == 1


def test_a_configured_default_answers_unscripted_requests():
    with FakeOpenAI(default=text("ok")) as fake:
        response = client_for(fake).responses.create(model=MODEL, input="hola")

    assert response.output_text == "ok"


def test_scripting_a_call_to_an_undeclared_tool_fails_loudly(fake_openai):
    fake_openai.script(tool_calls(("set_email", {"email": "a@b.co"})))

    with pytest.raises(openai.InternalServerError, match="'set_email'.*no such tool"):
        client_for(fake_openai).responses.create(model=MODEL, input="a@b.co")


def test_several_calls_with_parallel_tool_calls_off_fail_loudly(fake_openai):
    fake_openai.script(tool_calls(("set_email", {"email": "a@b.co"}), ("set_full_name", {"full_name": "Ana"})))

    with pytest.raises(openai.InternalServerError, match="parallel_tool_calls=false"):
        client_for(fake_openai).responses.create(model=MODEL, input="x", tools=TOOLS, parallel_tool_calls=False)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"input": "hola"}, "hola"),
        ({"input": [{"role": "user", "content": "uno"}, {"role": "assistant", "content": "x"}]}, "uno"),
        (
            {
                "input": [
                    {"role": "user", "content": "viejo"},
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "nuevo"}]},
                ]
            },
            "nuevo",
        ),
        ({"input": [{"type": "function_call_output", "call_id": "call_1", "output": "ok"}]}, ""),
        ({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "chat"}]}, "chat"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "partes"}]}]}, "partes"),
    ],
)
def test_last_user_text_reads_both_apis(body, expected):
    assert last_user_text(body) == expected


# --- Chat Completions ----------------------------------------------------------------------------


def test_chat_tool_calls_then_tool_message_follow_up(fake_openai):
    fake_openai.script(tool_calls(("set_email", {"email": "a@b.co"})), text("Gracias"))
    client = client_for(fake_openai)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "a@b.co"}]

    first = client.chat.completions.create(model=MODEL, messages=messages, tools=CHAT_TOOLS)
    choice = first.choices[0]
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    messages += [
        choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": call.id, "content": "saved"},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=CHAT_TOOLS)

    assert first.id.startswith("chatcmpl-")
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", None)
    assert call.id.startswith("call_")
    assert (call.function.name, json.loads(call.function.arguments)) == ("set_email", {"email": "a@b.co"})
    assert (second.choices[0].finish_reason, second.choices[0].message.content) == ("stop", "Gracias")
    assert second.usage is not None
    assert second.usage.total_tokens == second.usage.prompt_tokens + second.usage.completion_tokens > 0
    sent = fake_openai.requests_to("/v1/chat/completions")[0].body
    assert sent is not None
    assert sent["tools"][0]["function"]["strict"] is True
    assert fake_openai.tool_outputs(fake_openai.requests[-1].body) == {call.id: "saved"}


def test_chat_tool_call_without_tool_message_is_a_bad_request(fake_openai):
    fake_openai.script(text("never sent"))
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "a@b.co"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "set_email", "arguments": "{}"}}],
        },
        {"role": "user", "content": "¿hola?"},
    ]

    with pytest.raises(openai.BadRequestError) as caught:
        client_for(fake_openai).chat.completions.create(model=MODEL, messages=messages, tools=CHAT_TOOLS)

    assert "did not have response messages: call_1" in caught.value.message
    assert caught.value.param == "messages.[1].role"


def test_chat_tool_message_without_a_call_is_a_bad_request(fake_openai):
    fake_openai.script(text("never sent"))
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "hola"},
        {"role": "tool", "tool_call_id": "call_ghost", "content": "saved"},
    ]

    with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding message with 'tool_calls'"):
        client_for(fake_openai).chat.completions.create(model=MODEL, messages=messages)


# --- Streaming ------------------------------------------------------------------------------------


def test_a_streamed_response_has_the_real_event_order_and_adds_up_to_the_text(fake_openai):
    fake_openai.script(text("Hola, ¿en qué te ayudo hoy?"))

    raw = client_for(fake_openai).responses.with_raw_response.create(model=MODEL, input="hola", stream=True)
    events: list[Any] = list(raw.parse())

    assert raw.headers["content-type"].startswith("text/event-stream")
    kinds = [event.type for event in events]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert len(deltas) > 1 and "".join(deltas) == "Hola, ¿en qué te ayudo hoy?"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    final = events[-1].response
    assert final.output_text == "Hola, ¿en qué te ayudo hoy?" and final.usage is not None
    assert fake_openai.stored_response(final.id) is not None  # completed, so it can be chained


def test_the_sdk_stream_helper_assembles_streamed_tool_calls_and_chains_them(fake_openai):
    fake_openai.script(tool_calls(("set_email", {"email": "ana@b.co"})), text("Guardado."))
    client = client_for(fake_openai)

    with client.responses.stream(model=MODEL, input="ana@b.co", tools=TOOLS) as stream:
        arguments = "".join(e.delta for e in stream if e.type == "response.function_call_arguments.delta")
        first = stream.get_final_response()
    (call,) = function_calls(first)
    second = client.responses.create(model=MODEL, previous_response_id=first.id, input=outputs_for([call]))

    assert json.loads(arguments) == json.loads(call.arguments) == {"email": "ana@b.co"}
    assert second.output_text == "Guardado."


def test_streamed_chat_chunks_carry_text_tool_call_pieces_usage_and_done(fake_openai):
    fake_openai.script(text("Uno dos tres"), tool_calls(("set_email", {"email": "ana@b.co"})))
    client = client_for(fake_openai)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hola"}]

    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=CHAT_TOOLS) as stream:
        for _ in stream:
            pass
        completion = stream.get_final_completion()

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == "Uno dos tres"
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert {chunk.id for chunk in chunks} == {chunks[0].id} and chunks[0].object == "chat.completion.chunk"
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.id.startswith("call_") and call.function.name == "set_email"
    assert json.loads(call.function.arguments) == {"email": "ana@b.co"}
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("chat", [False, True])
def test_a_cut_stream_sends_its_text_then_drops_the_connection(fake_openai, chat):
    fake_openai.script(cut("Hola, te cuento"))
    client = client_for(fake_openai)
    pieces: list[str] = []

    with pytest.raises(openai.APIConnectionError):
        if chat:
            stream: Any = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hola"}], stream=True
            )
            pieces.extend(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        else:
            stream = client.responses.create(model=MODEL, input="hola", stream=True)
            pieces.extend(e.delta for e in stream if e.type == "response.output_text.delta")

    assert "".join(pieces) == "Hola, te cuento"


def test_a_cut_reply_without_stream_hangs_up_without_an_answer(fake_openai):
    fake_openai.script(cut("Hola"))

    with pytest.raises(openai.APIConnectionError):
        client_for(fake_openai).responses.create(model=MODEL, input="hola")


def test_errors_are_answered_before_any_event_when_streaming(fake_openai):
    fake_openai.script(error(429, retry_after=1))

    with pytest.raises(openai.RateLimitError):
        client_for(fake_openai).responses.create(model=MODEL, input="hola", stream=True)


# --- Embeddings ----------------------------------------------------------------------------------


def test_embeddings_are_the_same_vector_in_both_encodings(fake_openai):
    client = client_for(fake_openai)

    default = client.embeddings.create(model="text-embedding-3-small", input=["hola", "adiós"])
    floats = client.embeddings.create(model="text-embedding-3-small", input=["hola"], encoding_format="float")
    raw_base64 = client.embeddings.create(model="text-embedding-3-small", input="hola", encoding_format="base64")

    hola, adios = (item.embedding for item in default.data)
    assert len(hola) == 1536
    assert math.isclose(math.fsum(value * value for value in hola), 1.0, rel_tol=1e-5)
    assert hola == floats.data[0].embedding == embedding_vector("hola")
    assert hola != adios
    decoded = base64.b64decode(raw_base64.data[0].embedding)  # type: ignore[arg-type]
    assert list(struct.unpack("<1536f", decoded)) == hola
    sent = [request.body["encoding_format"] for request in fake_openai.requests_to("/embeddings") if request.body]
    assert sent == ["base64", "float", "base64"]  # the SDK asks for base64 unless told otherwise
    assert (default.object, default.model, [item.index for item in default.data]) == (
        "list",
        "text-embedding-3-small",
        [0, 1],
    )
    assert default.usage.prompt_tokens == default.usage.total_tokens == 2


def test_embeddings_honour_dimensions_as_a_renormalised_prefix(fake_openai):
    client = client_for(fake_openai)

    short = client.embeddings.create(model="text-embedding-3-small", input="hola", dimensions=256).data[0].embedding

    full = embedding_vector("hola")
    norm = math.sqrt(math.fsum(value * value for value in full[:256]))
    assert len(short) == 256
    assert all(math.isclose(a, b / norm, rel_tol=1e-5, abs_tol=1e-7) for a, b in zip(short, full[:256], strict=True))


def test_more_than_2048_embedding_inputs_is_a_bad_request(fake_openai):
    with pytest.raises(openai.BadRequestError, match="2048"):
        client_for(fake_openai).embeddings.create(model="text-embedding-3-small", input=["x"] * 2049)

    assert (
        len(client_for(fake_openai).embeddings.create(model="text-embedding-3-small", input=["x"] * 2048).data) == 2048
    )


def test_embeddings_errors_can_be_injected_with_a_rule(fake_openai):
    fake_openai.when(lambda body: True, error(429, retry_after=1), path="/v1/embeddings")
    fake_openai.script(text("chat is untouched"))
    client = client_for(fake_openai)

    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="text-embedding-3-small", input="hola")
    assert client.responses.create(model=MODEL, input="hola").output_text == "chat is untouched"


# --- HTTP surface --------------------------------------------------------------------------------


def _post(url: str, payload: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, dict[str, Any]]:
    request = urllib.request.Request(url, json.dumps(payload).encode(), headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310 - a loopback URL we built
            return reply.status, reply.headers["Content-Type"], json.loads(reply.read())
    except urllib.error.HTTPError as failure:
        return failure.code, failure.headers["Content-Type"], json.loads(failure.read())


def test_unknown_route_is_a_404_with_an_error_body(fake_openai):
    status, content_type, body = _post(fake_openai.base_url + "/nope", {}, {"Authorization": "Bearer test"})

    assert (status, content_type) == (404, "application/json")
    assert body == {
        "error": {
            "message": "Invalid URL (POST /v1/nope)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def test_a_request_without_an_api_key_is_a_401(fake_openai):
    status, _, body = _post(fake_openai.base_url + "/responses", {"model": MODEL, "input": "hola"}, {})

    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"


def test_the_sdk_finds_the_fake_through_openai_base_url(fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.script(text("por variable de entorno"))

    response = OpenAI(api_key="test", max_retries=0).responses.create(model=MODEL, input="hola")

    assert response.output_text == "por variable de entorno"


def test_stop_hangs_up_on_a_pending_slow_reply():
    fake = FakeOpenAI().start()
    fake.script(slow(30, then=text("tarde")))
    client = client_for(fake, timeout=10)
    started = time.monotonic()
    failures: list[BaseException] = []

    def call() -> None:
        try:
            client.responses.create(model=MODEL, input="hola")
        except BaseException as exc:
            failures.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: fake.requests, timeout=5)  # the request reached the server and is being held
    fake.stop()
    caller.join(timeout=5)

    assert time.monotonic() - started < 5
    assert failures and isinstance(failures[0], openai.APIConnectionError)
