"""The visitor's WebSocket through the real ASGI application and the real Redis channel layer."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from conversations import inbox, state
from conversations.models import Conversation, Message, Sender
from talia.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

SESSION = "socket-session-0001"
HOST = [(b"host", b"testserver")]


def connect(
    session: str = SESSION, *, query: str = "", headers: list[tuple[bytes, bytes]] | None = None
) -> WebsocketCommunicator:
    path = f"/ws/webchat/?session_id={session}{query}"
    return WebsocketCommunicator(application, path, headers=headers if headers is not None else HOST)


async def ready(socket: WebsocketCommunicator) -> WebsocketCommunicator:
    """Connect and wait until the consumer has joined its groups (frames are handled after connect)."""
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    return socket


async def next_of(socket: WebsocketCommunicator, kind: str, timeout: float = 10) -> dict:
    """The next event of type `kind`, skipping others (typing indicators, for one)."""
    while True:
        event = await socket.receive_json_from(timeout=timeout)
        if event["type"] == kind:
            return event


@pytest.mark.parametrize(
    ("session", "query", "headers", "code"),
    [
        ("bad id!", "", HOST, 4400),
        ("short", "", HOST, 4400),
        (SESSION, "", [*HOST, (b"origin", b"https://evil.example")], 4403),
    ],
)
async def test_bad_connections_are_closed_with_a_reason(session, query, headers, code):
    socket = connect(session, query=query, headers=headers)
    connected, _ = await socket.connect()

    assert connected
    assert (await socket.receive_output(timeout=5))["code"] == code
    await socket.disconnect()


@override_settings(TALIA_WEBCHAT_PUBLIC_TOKEN="pk_demo")
async def test_the_token_is_checked_on_the_socket_too():
    refused, accepted = connect(query="&token=wrong"), connect(query="&token=pk_demo")
    await refused.connect()
    await accepted.connect()

    assert (await refused.receive_output(timeout=5))["code"] == 4401
    await accepted.send_json_to({"type": "ping"})
    assert await accepted.receive_json_from(timeout=5) == {"type": "pong"}
    await refused.disconnect()
    await accepted.disconnect()


@override_settings(TALIA_WEBCHAT_ALLOWED_ORIGINS=["https://shop.example"])
async def test_an_allowed_origin_may_connect():
    socket = connect(headers=[*HOST, (b"origin", b"https://shop.example")])
    await socket.connect()

    await socket.send_json_to({"type": "ping"})

    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    await socket.disconnect()


async def test_a_message_sent_on_the_socket_comes_back_and_is_answered(celery_worker):
    socket = connect()
    await socket.connect()

    await socket.send_json_to({"type": "message", "content": "Hola", "client_message_id": "socket-msg-01"})

    mine = await next_of(socket, "message.new")
    assert (mine["message"]["sender"], mine["message"]["text"], mine["message"]["seq"]) == ("contact", "Hola", 1)
    reply = await next_of(socket, "message.new", timeout=20)
    assert reply["message"]["sender"] == "assistant" and reply["message"]["seq"] == 2
    assert "metadata" not in reply["message"]
    # The documented frame only: the status and response id the reply's push carries are the waiting door's.
    assert set(reply) == {"type", "conversation_id", "message"}
    await socket.disconnect()


async def test_a_conversation_opened_through_rest_is_followed_by_an_open_socket():
    socket = connect()
    await socket.connect()
    await socket.send_json_to({"type": "ping"})
    await socket.receive_json_from(timeout=5)  # connected and subscribed

    await sync_to_async(inbox.receive)("web", SESSION, "Hola desde otra pestaña")

    opened = await next_of(socket, "conversation.opened")
    message = await next_of(socket, "message.new")
    assert message["conversation_id"] == opened["conversation_id"]
    assert message["message"]["text"] == "Hola desde otra pestaña"
    await socket.disconnect()


async def test_resume_sends_what_was_missed_during_a_gap():
    first = await sync_to_async(inbox.receive)("web", SESSION, "uno")
    await sync_to_async(inbox.send)(first.conversation, "dos", sender=Sender.ASSISTANT)
    await sync_to_async(inbox.send)(first.conversation, "tres", sender=Sender.ASSISTANT)
    socket = connect()
    await socket.connect()

    await socket.send_json_to({"type": "resume", "after": 1})

    missed = [await next_of(socket, "message.new") for _ in range(2)]
    assert [(m["message"]["seq"], m["message"]["text"]) for m in missed] == [(2, "dos"), (3, "tres")]
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}  # nothing else was resent
    await socket.disconnect()


async def test_handoff_accepted_reaches_the_visitor_with_the_agents_name(django_user_model):
    received = await sync_to_async(inbox.receive)("web", SESSION, "Quiero una persona")
    agent = await sync_to_async(django_user_model.objects.create_user)("ana", first_name="Ana")
    socket = connect()
    await ready(socket)

    await sync_to_async(state.request_handoff)(received.conversation, requested_by="contact")
    await sync_to_async(state.claim_conversation)(received.conversation, agent)

    assert (await next_of(socket, "handoff.requested"))["status"] == "queued"
    accepted = await next_of(socket, "handoff.accepted")
    assert (accepted["status"], accepted["agent_name"]) == ("agent", "Ana")
    await socket.disconnect()


async def test_visitor_typing_goes_to_the_conversation_but_is_not_echoed():
    received = await sync_to_async(inbox.receive)("web", SESSION, "Hola")
    layer = get_channel_layer()
    agent_side = await layer.new_channel()
    await layer.group_add(received.conversation.group_name, agent_side)
    socket = await ready(connect())

    await socket.send_json_to({"type": "typing", "active": True})

    event = await asyncio.wait_for(layer.receive(agent_side), 5)
    assert event == {
        "type": "typing",
        "conversation_id": str(received.conversation.pk),
        "sender": "contact",
        "active": True,
    }
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}  # not echoed to the visitor
    await layer.group_discard(received.conversation.group_name, agent_side)
    await socket.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "message", "content": ""}, "invalid"),
        ({"type": "message", "content": "a" * 4001}, "invalid"),
        ({"type": "message", "content": "hola", "client_message_id": "x"}, "invalid"),
        ({"type": "resume", "after": "yesterday"}, "invalid"),
        ({"type": "dance"}, "unknown_type"),
        ([1, 2, 3], "not_an_object"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(frame, code):
    socket = connect()
    await socket.connect()

    await socket.send_json_to(frame)

    assert (await socket.receive_json_from(timeout=5))["error"]["code"] == code
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    assert await sync_to_async(Message.objects.count)() == 0
    await socket.disconnect()


@pytest.mark.parametrize(
    ("frame", "body"),
    [
        (
            {"type": "message", "content": "   "},
            {"author": "user", "session_id": "session-0001-abcd", "content": "   "},
        ),
        (
            {"type": "message", "content": "hola", "client_message_id": "no!"},
            {"author": "user", "session_id": "session-0001-abcd", "content": "hola", "client_message_id": "no!"},
        ),
    ],
)
async def test_a_bad_frame_is_refused_with_the_fields_the_rest_api_names(async_client, frame, body):
    """One validation for both doors: the socket's error names the same fields as the API's 400."""
    socket = connect()
    await socket.connect()
    await socket.send_json_to(frame)
    error = (await socket.receive_json_from(timeout=5))["error"]
    await socket.disconnect()

    response = await async_client.post("/api/webchat/messages", body, content_type="application/json")

    assert response.status_code == 400
    assert error == response.json()["error"]


@override_settings(TALIA_WEBCHAT_RATE_PER_SESSION=(1, 60))
async def test_socket_messages_share_the_rate_limit():
    socket = connect()
    await socket.connect()
    await socket.send_json_to({"type": "message", "content": "uno"})
    await next_of(socket, "message.new")

    await socket.send_json_to({"type": "message", "content": "dos"})

    assert (await next_of(socket, "error"))["error"]["code"] == "rate_limited"
    assert await sync_to_async(Message.objects.count)() == 1
    await socket.disconnect()


async def test_conversation_closed_reaches_the_visitor():
    received = await sync_to_async(inbox.receive)("web", SESSION, "Hola")
    socket = connect()
    await ready(socket)

    await sync_to_async(state.close_conversation)(received.conversation, ended_by="agent")

    closed = await next_of(socket, "conversation.closed")
    assert closed["status"] == "closed"
    assert await sync_to_async(Conversation.objects.filter(status="closed").count)() == 1
    await socket.disconnect()
