"""How the console tests reach the system: as a signed-in browser would, over HTTP and the staff sockets."""

from __future__ import annotations

import json
from typing import Any

from channels.testing import WebsocketCommunicator
from django.test import Client

from conversations import inbox, state
from conversations.models import Conversation
from talia.asgi import application

# A host and origin in ALLOWED_HOSTS (the validator reads them when talia.asgi is imported).
HOST = [(b"host", b"localhost"), (b"origin", b"http://localhost")]


def staff_socket(user: Any, path: str = "/ws/console/") -> WebsocketCommunicator:
    """A staff socket as a browser opens it: with the session cookie of a signed-in user (or none)."""
    headers = list(HOST)
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def console_socket(user: Any) -> WebsocketCommunicator:
    return staff_socket(user, "/ws/console/")


async def ready(socket: WebsocketCommunicator) -> WebsocketCommunicator:
    """Connect and wait until the consumer has joined its groups (frames are handled after connect)."""
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    return socket


async def next_of(socket: WebsocketCommunicator, kind: str, timeout: float = 10) -> dict[str, Any]:
    """The next event of type `kind`, skipping others."""
    while True:
        event = await socket.receive_json_from(timeout=timeout)
        if event["type"] == kind:
            return event


def signed_in(user: Any) -> Client:
    client = Client(enforce_csrf_checks=False)
    if user is not None:
        client.force_login(user)
    return client


def api(client: Client, conversation: Any, action: str, body: dict[str, Any] | None = None) -> Any:
    url = f"/console/api/conversations/{conversation.pk}/{action}"
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def queued(session: str, reason: str = "", channel: str = "web", phone: str = "+34600111222") -> Conversation:
    """A conversation that asked for a person through the state machine (routing to a team included); on a
    phone channel the contact writes from `phone`."""
    address = session if channel == "web" else phone
    conversation = inbox.receive(channel, address, "Hola", assistant_turn=False).conversation
    state.request_handoff(conversation, requested_by="assistant", reason=reason)
    conversation.refresh_from_db()
    return conversation
