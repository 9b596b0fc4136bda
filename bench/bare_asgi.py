"""The floor of the sockets benchmark: bare Channels consumers on the same Daphne, Django and channel layer.

`python -m talia.runtime.web ... bench.bare_asgi:application` serves `/ws/bare/?name=<name>`: a plain
AsyncJsonWebsocketConsumer that accepts, joins the group `bare.<name>`, answers ping with pong, relays a
frame of any other type to its group as it is (a typing indicator, a message), and forwards what its
group receives. No checks, no database, no limits: what the bare stack costs for the same work.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "talia.settings")
django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402  (after django.setup)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class BareConsumer(AsyncJsonWebsocketConsumer):
    group = ""

    async def connect(self) -> None:
        await self.accept()
        name = parse_qs(self.scope.get("query_string", b"").decode()).get("name", ["x"])[0]
        self.group = f"bare.{name}"
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.channel_layer.group_send(self.group, content)

    async def typing(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def message_new(self, event: dict[str, Any]) -> None:
        await self.send_json(event)


async def ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Any HTTP request: 200, so the benchmark sees the server up (its /health probe)."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


application = ProtocolTypeRouter({"http": ok, "websocket": URLRouter([path("ws/bare/", BareConsumer.as_asgi())])})
