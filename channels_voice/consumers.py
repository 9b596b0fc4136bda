"""`WS /api/voice/stream`: Twilio Media Streams for calls answered in realtime mode.

Twilio opens the socket from `<Connect><Stream>` and sends JSON text frames: `connected`, then `start`
(whose `customParameters` carry the stream token the inbound webhook issued), then `media`, `mark`,
`dtmf` and finally `stop`. Invariants:
- Nothing but `connected` is read before the token checks out: a `start` with a missing, forged,
  expired or foreign token, any other frame before it, or a binary frame closes the socket with
  CLOSE_FORBIDDEN (4403) and no Realtime session is opened. A call that is over or not in realtime
  mode closes it the same way.
- The socket joins no channel-layer group (it needs no pushes) and its frames are not preceded by a
  database-thread hop: it is a plain ASGI application, not a Channels consumer. A consumer's
  dispatch loop creates a task and waits on it for every frame, and a call brings 50 frames a second
  each way plus Twilio's mark echoes; this loop reads each message and handles it in place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async

from channels_voice import streaming, tokens
from channels_voice.bridge import Bridge

logger = logging.getLogger("talia.voice")

CLOSE_FORBIDDEN = 4403

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class MediaStreamApp:
    """The stream route's ASGI application: one MediaStream per socket."""

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        stream = MediaStream(send)
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                await stream.receive(message.get("text"), message.get("bytes"))
            elif kind == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif kind == "websocket.disconnect":
                await stream.disconnect(message.get("code", 1000))
                return


class MediaStream:
    """One Twilio media stream: the token check, then its frames handed to the call's bridge."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.bridge: Bridge | None = None
        self.refused = False
        self.gone = False  # the socket is closed: nothing more is sent on it

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.refused:
            return
        try:
            frame = json.loads(text_data) if text_data is not None else None
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            await self._refuse("not a JSON text frame")
            return
        event = frame.get("event")
        bridge = self.bridge
        if bridge is None:
            if event == "connected":
                return
            if event == "start":
                await self._start(frame)
                return
            await self._refuse(f"{event!r} before a valid start")
            return
        if event == "media":
            media = frame.get("media") or {}
            if media.get("track", "inbound") == "inbound" and isinstance(media.get("payload"), str):
                await bridge.caller_audio(media["payload"])
        elif event == "mark":
            await bridge.mark_played(str((frame.get("mark") or {}).get("name", "")))
        elif event == "stop":
            await bridge.stop()
            await self.close()

    async def _start(self, frame: dict[str, Any]) -> None:
        start: dict[str, Any] = frame["start"] if isinstance(frame.get("start"), dict) else {}
        parameters: dict[str, Any] = (
            start["customParameters"] if isinstance(start.get("customParameters"), dict) else {}
        )
        call_sid = str(start.get("callSid", ""))
        grant = tokens.check(str(parameters.get("token", "")), call_sid)
        if grant is None:
            await self._refuse("bad or expired stream token")
            return
        call = await database_sync_to_async(streaming.live_call)(grant.call_sid, grant.conversation_id)
        if call is None:
            await self._refuse("the call is over or not in realtime mode")
            return
        stream_sid = str(start.get("streamSid") or frame.get("streamSid") or "")
        self.bridge = Bridge(call, stream_sid, self._to_twilio, self.close)
        logger.info("Call %s: media stream %s started", call_sid, stream_sid)
        await self.bridge.start()

    async def _to_twilio(self, text: str) -> None:
        if self.gone:
            return  # Twilio hung up: what the model still says has nobody to hear it
        await self.send({"type": "websocket.send", "text": text})

    async def close(self, code: int | None = None) -> None:
        message: dict[str, Any] = {"type": "websocket.close"}
        if code is not None:
            message["code"] = code
        await self.send(message)

    async def _refuse(self, why: str) -> None:
        logger.warning("Media stream refused: %s", why)
        self.refused = True
        await self.close(code=CLOSE_FORBIDDEN)

    async def disconnect(self, code: int) -> None:
        self.gone = True
        if self.bridge is not None:
            await self.bridge.stop()
