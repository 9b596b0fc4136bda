"""Real WebSocket clients (aiohttp) for soak, load and benchmark runs against a live Daphne.

Channels' communicators run the consumer in the test's own loop; these go over TCP to a separate
Daphne process, so the whole path is exercised: Daphne, the consumer, the channel layer's Redis reads
and the client. Each `LiveSocket` keeps reading in a task of its own, as a browser would, so the
server's keepalive pings are answered and every frame is recorded with its arrival time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@contextlib.contextmanager
def pushes_lost(group: str) -> Iterator[None]:
    """While inside, the sockets in `group` are out of it in Redis, so pushes to it are lost.

    A fault at the wire, as an expired membership or a push dropped over capacity would leave a socket;
    they are put back on the way out. Waits (bounded) for the group to have members first.
    """
    from django.conf import settings

    from talia.redis_client import get_redis
    from talia.testing.plugin import wait_for

    redis = get_redis()
    key = f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:group:{group}"
    members = wait_for(lambda: redis.zrange(key, 0, -1))
    redis.zrem(key, *members)
    try:
        yield
    finally:
        redis.zadd(key, dict.fromkeys(members, time.time()))


def session_cookie(user: Any) -> str:
    """A `Cookie` header value for `user` signed in (a real session row, as the login page makes)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@dataclass
class LiveSocket:
    """One open socket: `frames` are the JSON frames received so far, `close_code` is set once closed."""

    name: str
    ws: aiohttp.ClientWebSocketResponse
    frames: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    # When each pushed message (by its id) arrived: for latency measurements.
    message_arrivals: dict[str, float] = field(default_factory=dict)
    close_code: int | None = None
    reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                now = time.perf_counter()
                frame = json.loads(message.data)
                self.arrivals.append(now)
                self.frames.append(frame)
                if isinstance(frame, dict) and frame.get("type") == "message.new":
                    self.message_arrivals.setdefault(str(frame.get("message", {}).get("id")), now)
        self.close_code = self.ws.close_code if self.ws.close_code is not None else -1

    @property
    def closed(self) -> bool:
        return self.close_code is not None or self.ws.closed

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame))

    def find(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if predicate(frame)]

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any] | None:
        """The first frame (already received or arriving within `timeout`) that matches, else None."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(predicate)
            if found:
                return found[0]
            if self.closed or time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if not self.ws.closed:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.wait([self.reader], timeout=5)


class SocketPool:
    """Opens many sockets on one aiohttp session (no connection limit) and closes them all at the end."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.ws_url = base_url.replace("http", "ws", 1)
        self.sockets: list[LiveSocket] = []
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SocketPool:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)
        if self.session is not None:
            await self.session.close()

    async def open(self, name: str, path: str, *, cookie: str = "") -> LiveSocket:
        assert self.session is not None
        headers = {"Origin": self.base_url}
        if cookie:
            headers["Cookie"] = cookie
        # No client heartbeat: the socket stays silent from our side; Daphne's own pings are answered.
        ws = await self.session.ws_connect(self.ws_url + path, headers=headers, autoping=True, heartbeat=None)
        socket = LiveSocket(name, ws)
        socket.reader = asyncio.create_task(socket._read())
        self.sockets.append(socket)
        return socket

    async def open_ready(self, name: str, path: str, *, cookie: str = "", timeout: float = 15) -> LiveSocket:
        """Open, then ping and wait for the pong: by then the consumer has joined its groups."""
        socket = await self.open(name, path, cookie=cookie)
        await socket.send({"type": "ping"})
        if await socket.wait_for(lambda frame: frame.get("type") == "pong", timeout) is None:
            raise AssertionError(f"{name}: no pong (closed with {socket.close_code})")
        return socket
