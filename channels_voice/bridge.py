"""The realtime bridge: one call's Twilio media stream ↔ one OpenAI Realtime session.

Both legs carry G.711 μ-law at 8 kHz (`audio/pcmu`), so audio passes through as the base64 text it
arrives in: a caller's `media` payload becomes `input_audio_buffer.append`, an assistant's
`response.output_audio.delta` becomes a Twilio `media` message followed by a `mark`.

Invariants:
- Barge-in cuts the assistant at what the caller heard. Each outbound chunk is followed by a mark named
  for the bytes of its item sent so far; Twilio echoes a mark once the audio before it has played. When
  the caller starts speaking (`input_audio_buffer.speech_started`) while marks are still pending, the
  bridge sends Twilio `clear` and `conversation.item.truncate` at the echoed bytes / 8 (μ-law: 8 bytes per
  ms), never at a time read off the inbound clock. Marks Twilio echoes for audio a `clear` threw away are
  forgotten first, so they count for nothing.
- Transcript segments are stored in the order they were spoken, which is the order of their items
  (`input_audio_buffer.committed` for the caller, `response.output_item.added` for the assistant), even
  though their transcripts finish in another order; one writer stores them one after the other.
- Function calls run the assistant's tools (streaming.run_tool); their outputs go back as
  `function_call_output` items, then one `response.create` once the response that asked is done. When a
  tool hands the conversation to a person, the call is handed over as in gather mode instead.
- The OpenAI socket dropping is survived once: a new session gets the same configuration and the
  transcript so far as conversation items. A second failure (or a failed reconnect) falls back to speech
  turns over Twilio's REST API; the stream is then closed, so a call is never left in dead air.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosed

from channels_voice import streaming
from channels_voice.streaming import ASSISTANT, CALLER, TOOL, LiveCall

logger = logging.getLogger("talia.voice")

# μ-law at 8 kHz: one byte per sample.
BYTES_PER_MS = 8
# How long the stream's end waits for the last transcript segments to be stored.
DRAIN_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0

AUDIO_DELTA = frozenset({"response.output_audio.delta", "response.audio.delta"})
AUDIO_TRANSCRIPT_DONE = frozenset({"response.output_audio_transcript.done", "response.audio_transcript.done"})


@dataclass
class Segment:
    """One item's transcript: pending until its text is known (or it is dropped)."""

    speaker: str
    item_id: str
    text: str | None = None
    dropped: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        return self.dropped or self.text is not None


SendToTwilio = Callable[[str], Awaitable[None]]  # one JSON text frame
CloseTwilio = Callable[[], Awaitable[None]]


@functools.lru_cache(maxsize=4)
def realtime_client(api_key: str, base_url: str | None, websocket_base_url: str) -> AsyncOpenAI:
    """One SDK client per process and configuration, shared by every call: a client builds an HTTP
    transport with its own TLS context (certificates loaded from disk, ~10 ms of CPU) that the Realtime
    socket never uses; each call's socket is still its own (`client.realtime.connect`)."""
    return AsyncOpenAI(api_key=api_key, base_url=base_url, websocket_base_url=websocket_base_url)


class Bridge:
    def __init__(self, call: LiveCall, stream_sid: str, send_to_twilio: SendToTwilio, close_twilio: CloseTwilio):
        self.call = call
        self.stream_sid = stream_sid
        self.send_to_twilio = send_to_twilio
        self.close_twilio = close_twilio
        self.connection: Any = None  # the SDK's AsyncRealtimeConnection
        self.client = realtime_client(
            settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.TALIA_OPENAI_REALTIME_URL
        )
        # The per-frame messages to Twilio are written as text around the stream id, encoded once.
        sid = json.dumps(stream_sid)
        self._media_head = '{"event":"media","streamSid":' + sid + ',"media":{"payload":'
        self._mark_head = '{"event":"mark","streamSid":' + sid + ',"mark":{"name":"'
        self._clear = '{"event":"clear","streamSid":' + sid + "}"
        self.reconnected = False
        self.ending = False
        self.reader: asyncio.Task[None] | None = None
        # Outbound audio: per pending mark, the item and its bytes sent up to that mark.
        self.marks: dict[str, tuple[str, int]] = {}
        self.mark_count = 0
        self.sent_bytes: dict[str, int] = {}
        self.played_bytes: dict[str, int] = {}
        self.playing_item: str | None = None
        # Transcript: pending segments in spoken order, what was stored (for a reconnect), the writer.
        self.segments: list[Segment] = []
        self.history: list[tuple[str, str]] = []
        self.to_store: asyncio.Queue[Segment | None] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None
        self.response_called_tools = False
        self.responding = False  # a response was created and is not done yet

    # --- Lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self.writer = asyncio.create_task(self._write())
        try:
            self.connection = await self._open()
        except Exception:
            logger.exception("Call %s: the Realtime session could not be opened", self.call.call_sid)
            await self._fall_back()
            return
        self.reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        """The call's stream ended: close the OpenAI socket and store what is left, in order."""
        if self.ending and self.writer is None:
            return
        self.ending = True
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()
        await self._close_openai()
        for segment in self.segments:
            if segment.text is not None and not segment.dropped:
                self._stored(segment)
        self.segments.clear()
        writer, self.writer = self.writer, None
        if writer is not None:
            await self.to_store.put(None)
            try:
                await asyncio.wait_for(writer, DRAIN_TIMEOUT_S)
            except TimeoutError:
                logger.error("Call %s: transcript segments still unsaved at the end", self.call.call_sid)

    async def _open(self) -> Any:
        """A configured Realtime session; after a drop, with the transcript so far replayed into it."""
        manager = self.client.realtime.connect(model=settings.TALIA_OPENAI_REALTIME_MODEL)
        connection = await asyncio.wait_for(manager.enter(), CONNECT_TIMEOUT_S)
        session = await database_sync_to_async(streaming.session_config)(self.call)
        await connection.session.update(session=session)
        for speaker, text in self.history:
            role, kind = ("user", "input_text") if speaker == CALLER else ("assistant", "output_text")
            item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
            await connection.send_raw(json.dumps({"type": "conversation.item.create", "item": item}))
        return connection

    async def _close_openai(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # already gone
                logger.debug("Realtime socket close failed", exc_info=True)

    # --- Twilio → OpenAI -----------------------------------------------------------------------------

    async def caller_audio(self, payload: str) -> None:
        connection = self.connection
        if connection is None or not isinstance(payload, str):
            return  # reconnecting or ended: this frame is lost, as it would be on the phone line
        # A dropped socket is the reader's to see (it reconnects); the frame is lost meanwhile.
        with contextlib.suppress(ConnectionClosed, OSError):
            await connection.send_raw('{"type":"input_audio_buffer.append","audio":' + json.dumps(payload) + "}")

    async def mark_played(self, name: str) -> None:
        """Twilio echoed a mark: the audio before it has played (unless a clear threw it away)."""
        entry = self.marks.pop(name, None)
        if entry is not None:
            item_id, upto = entry
            if upto > self.played_bytes.get(item_id, 0):
                self.played_bytes[item_id] = upto

    # --- OpenAI → Twilio -----------------------------------------------------------------------------

    async def _read(self) -> None:
        while not self.ending:
            connection = self.connection
            if connection is None:
                return
            try:
                raw = await connection.recv_bytes()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # ConnectionClosed, OSError: the socket dropped
                if self.ending:
                    return
                logger.warning("Call %s: the Realtime socket dropped (%s)", self.call.call_sid, exc)
                if not await self._recover():
                    return
                continue
            try:
                event = json.loads(raw)
                await self._on_event(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Call %s: a Realtime event could not be handled", self.call.call_sid)

    async def _recover(self) -> bool:
        """Reconnect once with the conversation so far; else fall back to gather. True when reconnected."""
        await self._close_openai()
        self._forget_unfinished()
        if not self.reconnected:
            self.reconnected = True
            try:
                self.connection = await self._open()
            except Exception:
                logger.exception("Call %s: reconnecting to the Realtime API failed", self.call.call_sid)
            else:
                logger.info("Call %s: reconnected to the Realtime API", self.call.call_sid)
                if self.responding or (self.history and self.history[-1][0] == CALLER):
                    # The caller was waiting for an answer when the socket dropped: no dead air.
                    self.responding = False
                    await self._send_openai({"type": "response.create"})
                return True
        await self._fall_back()
        return False

    def _forget_unfinished(self) -> None:
        """A dropped session's pending items never finish: store what did, in order, and drop the rest."""
        for segment in self.segments:
            if segment.text is not None and not segment.dropped:
                self._stored(segment)
        self.segments.clear()
        self.marks.clear()
        self.playing_item = None
        self.response_called_tools = False

    async def _fall_back(self) -> None:
        logger.warning("Call %s: falling back to speech turns (gather)", self.call.call_sid)
        self.ending = True
        await self._close_openai()
        # The gather goes on after the last stored message: let the writer store what is queued first.
        try:
            await asyncio.wait_for(self.to_store.join(), DRAIN_TIMEOUT_S)
        except TimeoutError:
            logger.error("Call %s: transcript segments still unsaved at the fallback", self.call.call_sid)
        document = await database_sync_to_async(streaming.fallback_twiml)(self.call)
        await sync_to_async(streaming.redirect, thread_sensitive=False)(self.call, document, "fallback to gather")
        await self.close_twilio()

    async def _hand_over(self) -> None:
        logger.info("Call %s: a person has the conversation; handing the call over", self.call.call_sid)
        self.ending = True
        await self._close_openai()
        document = await database_sync_to_async(streaming.handover_twiml)(self.call)
        await sync_to_async(streaming.redirect, thread_sensitive=False)(self.call, document, "hand-over")
        await self.close_twilio()

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind in AUDIO_DELTA:
            await self._play(str(event.get("item_id", "")), str(event.get("delta", "")))
        elif kind == "input_audio_buffer.speech_started":
            await self._barge_in()
        elif kind == "input_audio_buffer.committed":
            self._expect(CALLER, str(event.get("item_id", "")))
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._settle(CALLER, str(event.get("item_id", "")), str(event.get("transcript", "")))
        elif kind == "conversation.item.input_audio_transcription.failed":
            self._settle(CALLER, str(event.get("item_id", "")), None)
        elif kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") == "message":
                self._expect(ASSISTANT, str(item.get("id", "")))
        elif kind in AUDIO_TRANSCRIPT_DONE:
            self._settle(ASSISTANT, str(event.get("item_id", "")), str(event.get("transcript", "")))
        elif kind == "response.function_call_arguments.done":
            await self._call_tool(str(event.get("call_id", "")), str(event.get("name", "")), event.get("arguments"))
        elif kind == "response.created":
            self.responding = True
        elif kind == "response.done":
            self.responding = False
            self._settle_response(event.get("response") or {})
            await self._response_done()
        elif kind == "error":
            logger.warning("Call %s: Realtime error %s", self.call.call_sid, event.get("error"))

    async def _play(self, item_id: str, delta: str) -> None:
        if not delta:
            return
        size = len(delta) * 3 // 4 - delta[-2:].count("=")  # decoded length, without decoding
        sent = self.sent_bytes.get(item_id, 0) + size
        self.sent_bytes[item_id] = sent
        self.playing_item = item_id
        self.mark_count += 1
        name = f"{self.mark_count}"
        self.marks[name] = (item_id, sent)
        # The payload passes through as the base64 text it came in (json.dumps only quotes it).
        await self.send_to_twilio(self._media_head + json.dumps(delta) + "}}")
        await self.send_to_twilio(self._mark_head + name + '"}}')

    async def _barge_in(self) -> None:
        """The caller speaks over the assistant: cut its audio where the caller's phone had got to."""
        item_id = self.playing_item
        if item_id is None or not any(entry[0] == item_id for entry in self.marks.values()):
            return  # nothing is playing: the caller simply speaks
        heard_ms = self.played_bytes.get(item_id, 0) // BYTES_PER_MS
        self.marks.clear()  # the echoes `clear` provokes are for audio nobody heard
        self.playing_item = None
        await self.send_to_twilio(self._clear)
        truncate = {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": heard_ms,
        }
        await self._send_openai(truncate)
        logger.info("Call %s: barge-in, assistant item cut at %s ms", self.call.call_sid, heard_ms)

    async def _call_tool(self, call_id: str, name: str, arguments: Any) -> None:
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        parsed, output = await database_sync_to_async(streaming.run_tool)(self.call.conversation_id, name, raw, call_id)
        # Stored by the writer after the caller's words it answers (their transcript may still be coming).
        self.segments.append(
            Segment(TOOL, call_id, text="", metadata={"name": name, "arguments": parsed, "output": output})
        )
        self._drain()
        item = {"type": "function_call_output", "call_id": call_id, "output": json.dumps(output, ensure_ascii=False)}
        await self._send_openai({"type": "conversation.item.create", "item": item})
        self.response_called_tools = True

    async def _response_done(self) -> None:
        if not self.response_called_tools:
            return
        self.response_called_tools = False
        if await database_sync_to_async(streaming.handed_over)(self.call.conversation_id):
            await self._hand_over()
            return
        await self._send_openai({"type": "response.create"})

    async def _send_openai(self, event: dict[str, Any]) -> None:
        connection = self.connection
        if connection is None:
            return
        with contextlib.suppress(ConnectionClosed, OSError):  # the reader sees the drop
            await connection.send_raw(json.dumps(event))

    # --- Transcript ------------------------------------------------------------------------------------

    def _expect(self, speaker: str, item_id: str) -> None:
        if item_id and not any(s.item_id == item_id for s in self.segments):
            self.segments.append(Segment(speaker, item_id))

    def _settle(self, speaker: str, item_id: str, text: str | None) -> None:
        segment = next((s for s in self.segments if s.item_id == item_id), None)
        if segment is None:
            segment = Segment(speaker, item_id)
            self.segments.append(segment)
        if text is None or not text.strip():
            segment.dropped = True
        else:
            segment.text = text
        self._drain()

    def _drain(self) -> None:
        """Hand the settled segments at the head of the line to the writer, in order."""
        while self.segments and self.segments[0].settled:
            head = self.segments.pop(0)
            if not head.dropped:
                self._stored(head)

    def _settle_response(self, response: dict[str, Any]) -> None:
        """A finished (or cancelled) response settles its messages: with the transcript it reports, or
        dropped when it has none (so a cut answer never holds back the segments after it)."""
        for item in response.get("output") or []:
            if not isinstance(item, dict) or item.get("type") != "message":
                continue
            pending = next((s for s in self.segments if s.item_id == item.get("id") and not s.settled), None)
            if pending is not None:
                parts = [part.get("transcript") for part in item.get("content") or [] if isinstance(part, dict)]
                self._settle(ASSISTANT, pending.item_id, next((t for t in parts if isinstance(t, str) and t), None))

    def _stored(self, segment: Segment) -> None:
        assert segment.text is not None
        if segment.speaker != TOOL:
            self.history.append((segment.speaker, segment.text))
        self.to_store.put_nowait(segment)

    async def _write(self) -> None:
        store = database_sync_to_async(streaming.store_segment)
        record = database_sync_to_async(streaming.record_tool_call)
        while (segment := await self.to_store.get()) is not None:
            try:
                if segment.speaker == TOOL:
                    details = segment.metadata
                    await record(
                        self.call.conversation_id,
                        segment.item_id,
                        details["name"],
                        details["arguments"],
                        details["output"],
                    )
                else:
                    await store(self.call, segment.speaker, segment.text or "", segment.item_id, segment.metadata)
            except Exception:
                logger.exception("Call %s: a transcript segment was not stored", self.call.call_sid)
            finally:
                self.to_store.task_done()
