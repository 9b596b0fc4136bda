"""The floor of the sockets benchmark: bare Channels consumers on the same Daphne, Django and channel layer.

`python -m talia.runtime.web ... bench.bare_asgi:application` serves `/ws/bare/?name=<name>`: a plain
AsyncJsonWebsocketConsumer that accepts, joins the group `bare.<name>`, answers ping with pong, relays a
frame of any other type to its group as it is (a typing indicator, a message), and forwards what its
group receives. No checks, no database, no limits: what the bare stack costs for the same work.

The message path's floors (`bench/message_path.py`) are HTTP routes of the same app, one thread hop
to Django's database connection each, as a view's would be:
- `POST /floor/insert`: one INSERT into `bench_floor` (the benchmark creates it), answered 200;
- `POST /floor/hop`: the same INSERT, then one Celery task (`bench.floor.wake`, bench/floor_tasks.py)
  sent to the `bench-floor` queue, and the answer once the worker's push wakes a BLPOP on Redis.
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


def _insert() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_floor (body) VALUES (%s)", ["Hola"])


def _insert_and_send(key: str) -> None:
    from bench.floor_tasks import app as floor_app

    _insert()
    floor_app.send_task("bench.floor.wake", args=[key], queue="bench-floor")


_waker: Any = None


async def floor(path: str) -> None:
    """One of the message path's floors (module docstring)."""
    global _waker
    import secrets

    import redis.asyncio
    from asgiref.sync import sync_to_async

    if path == "/floor/insert":
        await sync_to_async(_insert)()
        return
    key = "bench-floor:" + secrets.token_hex(8)
    await sync_to_async(_insert_and_send)(key)
    if _waker is None:
        _waker = redis.asyncio.Redis.from_url(os.environ["BENCH_FLOOR_REDIS_URL"])
    if await _waker.blpop([key], timeout=10) is None:
        raise RuntimeError("the floor's Celery hop did not come back within 10 s")


async def ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Any other HTTP request: 200, so the benchmark sees the server up (its /health probe)."""
    if scope["path"].startswith("/floor/"):
        while (await receive()).get("more_body"):
            pass
        await floor(scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


application = ProtocolTypeRouter({"http": ok, "websocket": URLRouter([path("ws/bare/", BareConsumer.as_asgi())])})
