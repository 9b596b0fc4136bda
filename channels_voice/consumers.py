"""`WS /api/voice/stream`: Twilio Media Streams for calls answered in realtime mode.

Twilio opens the socket from `<Connect><Stream>` and sends JSON text frames: `connected`, then `start`
(whose `customParameters` carry the stream token the inbound webhook issued), then `media`, `mark`,
`dtmf` and finally `stop`. Invariants:
- Nothing but `connected` is read before the token checks out: a `start` with a missing, forged,
  expired or foreign token, any other frame before it, or a binary frame closes the socket with
  CLOSE_FORBIDDEN (4403) and no Realtime session is opened. A call that is over or not in realtime
  mode closes it the same way.
- The socket joins no channel-layer group (it needs no pushes), so it keeps no receive loop on Redis,
  and, like talia.sockets' consumers, its frames are not preceded by a database-thread hop.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from channels_voice import streaming, tokens
from channels_voice.bridge import Bridge

logger = logging.getLogger("talia.voice")

CLOSE_FORBIDDEN = 4403


class MediaStreamConsumer(AsyncWebsocketConsumer):
    # No such layer is configured: get_channel_layer() answers None, so no channel is created.
    channel_layer_alias = "voice-media-stream (no layer)"
    bridge: Bridge | None = None
    refused = False
    gone = False  # the socket is closed: nothing more is sent on it

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its `aclose_old_connections()` hop (see talia.sockets)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        await self.accept()

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

    async def _to_twilio(self, message: dict[str, Any]) -> None:
        if self.gone:
            return  # Twilio hung up: what the model still says has nobody to hear it
        await self.send(text_data=json.dumps(message))

    async def _refuse(self, why: str) -> None:
        logger.warning("Media stream refused: %s", why)
        self.refused = True
        await self.close(code=CLOSE_FORBIDDEN)

    async def disconnect(self, code: int) -> None:
        self.gone = True
        if self.bridge is not None:
            await self.bridge.stop()
