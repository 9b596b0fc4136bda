"""What every TalIA WebSocket shares: frames checked before a handler sees them, and abuse limits.

`GuardedJsonConsumer` is the base of the visitor's socket and the staff sockets. Its invariants:
- A client frame reaches `receive_json` only once the subclass has called `admit()` (after it checked
  who is connecting), only within the socket's frame rate, and only as a dict from
  `talia.payloads.parse_frame` (the same rules as a REST body). Anything else is answered with an
  `{"type": "error", "error": {"code", "message"}}` frame and the socket stays open; a handler that fails
  unexpectedly is logged and answered the same way, never with a 1011 close.
- The frame rate is per socket, so it is kept in the consumer: past TALIA_WS_FRAME_RATE frames in a
  window, each frame gets a `rate_limited` error; past TALIA_WS_FRAME_HARD_LIMIT, the socket is closed
  with CLOSE_TOO_MANY_FRAMES. Every frame counts, whatever its type (ping and typing included).
- Sockets open at once are capped per key (client IP, widget session, staff user) in Redis, so the cap
  holds across every Daphne process. Each socket holds a slot under each of its keys: a member of a
  sorted set scored by when it expires, renewed while the socket sends frames, released on disconnect.
  A process that dies leaves slots that expire after SLOT_TTL_S. When Redis cannot be reached the cap
  is not enforced (fail open, like the message rate limits): an outage must not lock visitors out. While
  the Redis breaker (talia.redis_client) is open, slots are not even tried, so a hung Redis costs no wait.
- Typing indicators store nothing, so there is no commit to wait for: sockets relay them with
  conversations.realtime.relay_typing from their own event loop (no thread hop, no database).
- `join` adds a socket to several groups in one Redis round trip (talia.channel_layer).
- No hop to the database thread per message: Channels' `AsyncConsumer.dispatch` runs
  `close_old_connections` on the database thread (one thread for every socket of the process) before
  each frame and each push, so a push or a typing frame waited behind every query of every socket.
  Our consumers reach the database only through `database_sync_to_async`, which closes old connections
  itself around each call, so `dispatch` here goes straight to the handler.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import redis
from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from rest_framework.serializers import Serializer

from talia import payloads
from talia.api import error_body, plain_errors
from talia.redis_client import breaker, get_redis

logger = logging.getLogger(__name__)

# Close codes shared by every socket (documented in docs/webchat-api.md and docs/console-api.md).
CLOSE_TOO_MANY_SOCKETS = 4409
CLOSE_TOO_MANY_FRAMES = 4429

# Clients ping every 25 s; a slot outlives a few missed pings, and a dead process's slots go in 90 s.
SLOT_TTL_S = 90
SLOT_RENEW_S = SLOT_TTL_S // 3

# One round trip, atomic: drop expired members, refuse if any key is full, else take a slot in each.
_CLAIM = """
local now, expires, member, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZSCORE', key, member) == false and redis.call('ZCARD', key) >= tonumber(ARGV[4 + i]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, expires, member)
  redis.call('EXPIRE', key, ttl)
end
return 0
"""


@dataclass(frozen=True)
class SlotKey:
    """One thing whose open sockets are capped: `scope` (ip, session, user), its value and the cap."""

    scope: str
    value: str
    limit: int

    @property
    def redis_key(self) -> str:
        return f"{settings.REDIS_PREFIX}:sockets:{self.scope}:{self.value}"


def claim_slots(member: str, keys: list[SlotKey]) -> SlotKey | None:
    """Take a slot for `member` under every key; the key that is full (nothing taken), or None."""
    if not keys:
        return None
    if breaker.is_open():
        breaker.skipped("socket caps")
        return None
    now = time.time()
    try:
        full = get_redis().eval(
            _CLAIM,
            len(keys),
            *[key.redis_key for key in keys],
            now,
            now + SLOT_TTL_S,
            member,
            SLOT_TTL_S + 1,
            *[key.limit for key in keys],
        )
    except redis.RedisError as exc:
        if not breaker.record_failure(exc, "socket caps"):
            logger.warning("Socket caps not checked: Redis error", exc_info=True)
        return None
    breaker.record_success()
    return keys[int(full) - 1] if full else None


def renew_slots(member: str, keys: list[SlotKey]) -> None:
    if breaker.is_open():
        return  # the slots expire on their own; renewed on a later frame
    expires = time.time() + SLOT_TTL_S
    try:
        pipe = get_redis().pipeline(transaction=False)
        for key in keys:
            pipe.zadd(key.redis_key, {member: expires}, xx=True)
            pipe.expire(key.redis_key, SLOT_TTL_S + 1)
        pipe.execute()
    except redis.RedisError as exc:
        if not breaker.record_failure(exc, "socket slot renewal"):
            logger.warning("Socket slots not renewed: Redis error", exc_info=True)
        return
    breaker.record_success()


def release_slots(member: str, keys: list[SlotKey]) -> None:
    if breaker.is_open():
        return  # the slots expire on their own
    try:
        pipe = get_redis().pipeline(transaction=False)
        for key in keys:
            pipe.zrem(key.redis_key, member)
        pipe.execute()
    except redis.RedisError as exc:
        if not breaker.record_failure(exc, "socket slot release"):
            logger.warning("Socket slots not released (they expire): Redis error", exc_info=True)
        return
    breaker.record_success()


async def join(layer: Any, channel: str, groups: list[str]) -> None:
    """Add `channel` to `groups`: one pipelined round trip on TalIA's layer, one per group on another."""
    if hasattr(layer, "group_add_many"):
        await layer.group_add_many(groups, channel)
    else:
        for group in groups:
            await layer.group_add(group, channel)


@dataclass
class FrameWindow:
    """Frames counted in fixed windows of `period` seconds: ok, refuse (past `allowed`), close (past `hard`)."""

    allowed: int
    hard: int
    period: int
    window: int = -1
    count: int = field(default=0)

    def hit(self, now: float) -> Literal["ok", "refuse", "close"]:
        window = int(now // self.period)
        if window != self.window:
            self.window, self.count = window, 0
        self.count += 1
        if self.count <= self.allowed:
            return "ok"
        return "refuse" if self.count <= self.hard else "close"


class GuardedJsonConsumer(AsyncJsonWebsocketConsumer):
    """A JSON socket whose frames are validated and rate limited, and whose count is capped per key."""

    admitted = False
    slots: list[SlotKey]
    frames: FrameWindow
    slots_renewed_at = 0.0

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its `aclose_old_connections()` hop (see the module's docstring)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def admit(self, keys: list[SlotKey]) -> bool:
        """Take this socket's slots; False (after closing with 4409) when a cap is reached."""
        full = await sync_to_async(claim_slots, thread_sensitive=False)(self.channel_name, keys)
        if full is not None:
            logger.info("Socket refused: too many open for one %s", full.scope)
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return False
        self.slots = keys
        self.slots_renewed_at = time.monotonic()
        allowed, period = settings.TALIA_WS_FRAME_RATE
        self.frames = FrameWindow(allowed=allowed, hard=max(allowed, settings.TALIA_WS_FRAME_HARD_LIMIT), period=period)
        self.admitted = True
        return True

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        try:
            await super().websocket_disconnect(message)
        finally:
            if self.admitted:
                self.admitted = False
                await sync_to_async(release_slots, thread_sensitive=False)(self.channel_name, self.slots)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if not self.admitted:
            return  # refused (and closing) or still connecting: nothing to answer
        verdict = self.frames.hit(time.monotonic())
        if verdict == "close":
            logger.info("Socket closed: more than %s frames in %s s", self.frames.hard, self.frames.period)
            self.admitted = False  # nothing more is read; the slots go when the disconnect arrives
            await sync_to_async(release_slots, thread_sensitive=False)(self.channel_name, self.slots)
            await self.close(code=CLOSE_TOO_MANY_FRAMES)
            return
        if verdict == "refuse":
            await self.error("rate_limited", "Too many frames on this socket; slow down.")
            return
        try:
            content = payloads.parse_frame(text_data, bytes_data, max_bytes=settings.TALIA_JSON_MAX_BYTES)
        except payloads.PayloadError as exc:
            await self.error(exc.code, exc.message)
            return
        if time.monotonic() - self.slots_renewed_at > SLOT_RENEW_S:
            self.slots_renewed_at = time.monotonic()
            await sync_to_async(renew_slots, thread_sensitive=False)(self.channel_name, self.slots)
        try:
            await self.receive_json(content, **kwargs)
        except StopConsumer:
            raise
        except Exception:
            # A bug or an outage while handling one frame must not take the socket (and its pushes) down.
            logger.exception("Socket frame handler failed")
            await self.error("server_error", "This frame could not be handled; try again.")

    async def error(self, code: str, message: str, fields: dict[str, Any] | None = None) -> None:
        await self.send_json({"type": "error", **error_body(code, message, fields)})

    async def validated(self, serializer_class: type[Serializer], content: dict[str, Any]) -> dict[str, Any] | None:
        """The frame checked by the same serializer as its REST counterpart; None (after an `invalid`
        error frame shaped like the API's 400 body) when it does not pass."""
        serializer = serializer_class(data=content)
        if serializer.is_valid():
            return dict(serializer.validated_data)
        await self.error("invalid", "Some fields are invalid.", plain_errors(serializer.errors))
        return None
