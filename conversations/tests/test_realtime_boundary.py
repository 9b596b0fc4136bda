"""Pushes go through service modules: sockets and views never send on the channel layer by hand.

`realtime.publish` (after commit, skipped while Redis is failing) is called from service modules only;
consumers, views and APIs call those services. The agent's typing indicator, once sent by the console
socket itself, now goes through `inbox.typing` and still reaches the conversation's group.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from conversations import inbox, state
from conversations.tests.console_helpers import console_socket, ready

ROOT = Path(__file__).resolve().parents[2]
APPS = ["conversations", "channels_web", "channels_whatsapp", "channels_voice", "leads", "rag"]
# Modules that face sockets and HTTP: thin by design, no channel-layer sends of their own.
FRONT_MODULES = ["consumers.py", "views.py", "api.py"]
FORBIDDEN = {"group_send", "publish", "send"}


def front_modules() -> list[Path]:
    return [
        path
        for app in APPS
        for name in FRONT_MODULES
        for path in sorted((ROOT / app).rglob(name))
        if "tests" not in path.relative_to(ROOT).parts
    ]


def channel_layer_sends(path: Path) -> list[str]:
    """Calls like `self.channel_layer.group_send(...)`, `layer.send(...)` or `realtime.publish(...)`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FORBIDDEN:
            owner = ast.unparse(node.func.value)
            if "channel_layer" in owner or owner == "layer" or owner.endswith("realtime"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node.func)}")
    return found


def test_consumers_views_and_apis_send_nothing_on_the_channel_layer_themselves():
    modules = front_modules()
    assert ROOT / "conversations" / "console" / "consumers.py" in modules  # the scan looks where it should
    assert [hit for path in modules for hit in channel_layer_sends(path)] == []


@pytest.mark.django_db(transaction=True)
async def test_an_agents_typing_reaches_the_conversation_through_the_service(make_agent):
    received = await sync_to_async(inbox.receive)("web", "typing-agent-0001", "Hola")
    ana = await sync_to_async(make_agent)("ana")
    await sync_to_async(state.request_handoff)(received.conversation, requested_by="contact")
    await sync_to_async(state.claim_conversation)(received.conversation, ana)
    layer = get_channel_layer()
    visitor_side = await layer.new_channel()
    await layer.group_add(received.conversation.group_name, visitor_side)
    socket = await ready(await sync_to_async(console_socket)(ana))

    await socket.send_json_to({"type": "typing", "conversation_id": str(received.conversation.pk), "active": True})

    event = await asyncio.wait_for(layer.receive(visitor_side), 5)
    while event["type"] != "typing":  # pushes of the claim may still be queued
        event = await asyncio.wait_for(layer.receive(visitor_side), 5)
    assert event == {
        "type": "typing",
        "conversation_id": str(received.conversation.pk),
        "sender": "agent",
        "active": True,
    }
    await layer.group_discard(received.conversation.group_name, visitor_side)
    await socket.disconnect()
