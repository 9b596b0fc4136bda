"""Streamed replies: with a model engine, the visitor's socket sees the reply grow (`message.delta`) and
then gets the stored message (`message.new`); REST clients still get the whole reply.

The model is the fake OpenAI server speaking the real streaming protocol to the real SDK; the turn runs
for real (directly, or in a Celery worker for REST) and pushes go through the real Redis channel layer.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from conversations.assistant import turns
from conversations.models import AssistantRun, Message, Sender, conversation_group
from talia.testing.fake_openai import cut, text, tool_calls

from .test_socket import connect, ready

SESSION = "stream-visitor-0001"
REPLY = "¡Hola, Lucía! Abrimos de lunes a viernes, de 9 a 18 h, y los sábados por la mañana."


async def visitor_writes(socket: WebsocketCommunicator, content: str) -> Message:
    """Send a message on the socket; the stored message, once its own message.new comes back."""
    await socket.send_json_to({"type": "message", "content": content})
    while True:
        event = await socket.receive_json_from(timeout=10)
        if event["type"] == "message.new" and event["message"]["sender"] == Sender.CONTACT:
            return await Message.objects.aget(pk=event["message"]["id"])


async def frames_until_reply(socket: WebsocketCommunicator) -> tuple[list[dict], dict]:
    """The `message.delta` frames received, in order, up to the assistant's message.new, and that message."""
    deltas = []
    while True:
        event = await socket.receive_json_from(timeout=10)
        if event["type"] == "message.delta":
            deltas.append(event)
        elif event["type"] == "message.new" and event["message"]["sender"] == Sender.ASSISTANT:
            return deltas, event["message"]


def shown(deltas: list[dict]) -> str:
    """What a client shows of a stream: the text since its last reset."""
    text = ""
    for delta in deltas:
        text = ("" if delta["reset"] else text) + delta["text"]
    return text


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("model_engine", ["openai", "openai-chat"], indirect=True)
async def test_streaming_deltas_arrive_in_order_and_end_with_the_stored_message(model_engine):
    model_engine.script(tool_calls(("set_full_name", {"full_name": "Lucía Pérez"})), text(REPLY))
    socket = await ready(connect(SESSION))
    trigger = await visitor_writes(socket, "Soy Lucía Pérez. ¿Qué horario tenéis?")

    run = await sync_to_async(turns.run_turn)(trigger.pk)
    deltas, reply = await frames_until_reply(socket)

    assert run is not None and run.status == AssistantRun.Status.COMPLETED and run.rounds == 1
    stored = await Message.objects.aget(pk=str(run.reply_message_id))
    assert stored.text == REPLY
    assert reply["id"] == str(stored.pk) and reply["text"] == REPLY
    # One stream, named after the message it became, numbered without gaps, adding up to the reply.
    assert len(deltas) >= 2  # the first piece goes out at once, the rest at the latest when the reply ends
    assert {delta["stream"] for delta in deltas} == {str(stored.pk)}
    assert [delta["seq"] for delta in deltas] == list(range(1, len(deltas) + 1))
    assert not any(delta["reset"] for delta in deltas)
    assert "".join(delta["text"] for delta in deltas) == REPLY
    assert {delta["conversation_id"] for delta in deltas} == {str(trigger.conversation_id)}
    # Every model call of the turn was streamed, the tool round included.
    path = "/responses" if model_engine.requests_to("/responses") else "/chat/completions"
    assert [request.body["stream"] for request in model_engine.requests_to(path)] == [True, True]
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("model_engine", ["openai", "openai-chat"], indirect=True)
async def test_a_stream_broken_midway_is_withdrawn_and_the_retry_stores_the_whole_reply(model_engine):
    model_engine.script(cut("¡Hola, Lucía! Abrimos de lunes"), text(REPLY))
    socket = await ready(connect(SESSION))
    trigger = await visitor_writes(socket, "¿Qué horario tenéis?")

    with pytest.raises(turns.RetryTurn):
        await sync_to_async(turns.run_turn)(trigger.pk)
    assert not await Message.objects.filter(conversation_id=trigger.conversation_id, sender=Sender.ASSISTANT).aexists()
    run = await sync_to_async(turns.run_turn)(trigger.pk, attempt=1)
    deltas, reply = await frames_until_reply(socket)

    assert run is not None and run.status == AssistantRun.Status.COMPLETED
    replies = [
        m async for m in Message.objects.filter(conversation_id=trigger.conversation_id, sender=Sender.ASSISTANT)
    ]
    assert [m.text for m in replies] == [REPLY]  # nothing half-stored
    broken = [delta for delta in deltas if delta["stream"] != reply["id"]]
    retried = [delta for delta in deltas if delta["stream"] == reply["id"]]
    # The broken stream showed its part, then withdrew it; the retry streamed the whole reply.
    partial = "".join(delta["text"] for delta in broken[:-1])  # as far as it got before the break
    assert partial and "¡Hola, Lucía! Abrimos de lunes".startswith(partial)
    assert broken[-1]["reset"] is True and broken[-1]["text"] == "" and shown(broken) == ""
    assert [delta["seq"] for delta in broken] == list(range(1, len(broken) + 1))
    assert [delta["seq"] for delta in retried] == list(range(1, len(retried) + 1))
    assert shown(retried) == "".join(delta["text"] for delta in retried) == reply["text"] == REPLY
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_broken_stream_on_the_last_attempt_ends_in_the_fallback_reply_not_a_partial_one(model_engine, settings):
    settings.TALIA_ASSISTANT_MAX_ATTEMPTS = 1
    model_engine.script(cut("¡Hola, Lucía! Abrimos de"))
    socket = await ready(connect(SESSION))
    trigger = await visitor_writes(socket, "¿Qué horario tenéis?")

    run = await sync_to_async(turns.run_turn)(trigger.pk)
    deltas, reply = await frames_until_reply(socket)

    assert run is not None and run.status == AssistantRun.Status.FAILED
    stored = await Message.objects.aget(pk=str(run.reply_message_id))
    assert stored.metadata["fallback"] is True and reply["id"] == str(stored.pk)
    assert reply["text"] == turns.fallback_text("es") != "¡Hola, Lucía! Abrimos de"
    assert deltas[-1]["reset"] is True and shown(deltas) == ""  # what was shown is withdrawn first
    assert {delta["stream"] for delta in deltas} != {reply["id"]}
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_with_streaming_off_the_model_is_not_streamed_and_only_the_message_arrives(model_engine, settings):
    settings.TALIA_STREAM_REPLIES = False
    model_engine.script(text(REPLY))
    socket = await ready(connect(SESSION))
    trigger = await visitor_writes(socket, "¿Qué horario tenéis?")

    await sync_to_async(turns.run_turn)(trigger.pk)
    deltas, reply = await frames_until_reply(socket)

    assert deltas == [] and reply["text"] == REPLY
    assert "stream" not in model_engine.requests_to("/responses")[0].body
    await socket.disconnect()


def test_a_rest_client_gets_the_whole_reply_while_it_is_streamed(client, celery_worker, model_engine, listen):
    model_engine.script(text("¡Hola! ¿En qué puedo ayudarte?"), text(REPLY, pace=0.01))
    body = {"session_id": SESSION, "author": "user", "content": "Hola"}
    first = client.post("/api/webchat/messages", data=json.dumps(body), content_type="application/json")
    assert first.status_code == 200, first.content[:2000]
    pushes = listen(conversation_group(first.json()["metadata"]["conversation_id"]))

    body["content"] = "¿Qué horario tenéis?"
    response = client.post("/api/webchat/messages", data=json.dumps(body), content_type="application/json")

    assert response.status_code == 200, response.content[:2000]
    answer = response.json()
    assert answer["reply"] == REPLY
    stored = Message.objects.get(pk=answer["metadata"]["assistant_message_id"])
    assert stored.text == REPLY
    # The same reply was streamed on the conversation's group meanwhile, under the stored message's id.
    deltas = []
    while (event := pushes.receive()) is not None:
        if event["type"] == "message.delta":
            deltas.append(event)
        elif event["type"] == "message.new" and event["message"]["sender"] == Sender.ASSISTANT:
            break
    assert event is not None and event["message"]["id"] == str(stored.pk)
    assert shown(deltas) == REPLY and {delta["stream"] for delta in deltas} == {str(stored.pk)}
    assert [request.body["stream"] for request in model_engine.requests_to("/responses")] == [True, True]
