"""A fake OpenAI Realtime API on a real local WebSocket, for the voice bridge's tests and bench.

    with FakeRealtime([Turn("Hola, soy Ana", say="Encantada, Ana", calls=[("set_full_name", {...})])]) as fake:
        settings.TALIA_OPENAI_REALTIME_URL = fake.ws_base     # ws://127.0.0.1:PORT/v1
        ...                                                   # the real `openai` SDK connects to it
        fake.connections[0].received                          # every client event, as sent

It speaks the GA Realtime protocol (../shared/PROTOCOLS.md §2) the way the server does:
- GET /v1/realtime?model=… with `Authorization: Bearer <api key>` (else HTTP 401); `session.created`
  first; `session.update` answered with `session.updated`, and refused with an `error` event unless
  both audio legs are `audio/pcmu` and turn detection is `server_vad`. Audio before a valid session is
  answered with an `error`.
- Server VAD on the μ-law audio itself (no clock): a 20 ms frame louder than SPEECH_RMS starts speech
  (`input_audio_buffer.speech_started {audio_start_ms, item_id}`); SILENCE_MS of quiet frames end it
  (`speech_stopped`, `committed {item_id, previous_item_id}`), then the input transcription
  (`conversation.item.input_audio_transcription.completed`) and the response. The fake cannot
  recognise speech: the n-th utterance of the call is transcribed as the n-th scripted `Turn`'s
  `transcript` (the script carries on across reconnections, like the conversation does).
- A response is the turn's function calls first, each one its own response
  (`response.output_item.added` of a `function_call`, `response.function_call_arguments.done`,
  `response.done`), each waiting for the client's `function_call_output` item and `response.create`;
  then the spoken answer: `response.output_item.added` (a `message`), `response.output_audio.delta`s of
  base64 μ-law (a tone of `audio_ms`, in `delta_bytes` chunks), `response.output_audio.done`,
  `response.output_audio_transcript.done {item_id, transcript}`, `response.done`.
- `conversation.item.truncate` past the item's audio is an `error`, as on the real server; otherwise it
  is answered with `conversation.item.truncated`. `conversation.item.create` items are recorded.
- `Turn(drop_after=True)`: once that turn's answer is sent, the connection is cut (no close frame).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

FRAME_BYTES = 160  # 20 ms of μ-law at 8 kHz
SPEECH_RMS = 600
SILENCE_MS = 500
DELTA_BYTES = 800  # 100 ms per audio delta


def ulaw_to_linear(byte: int) -> int:
    """One G.711 μ-law byte as a 16-bit linear sample."""
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    sample = ((mantissa << 3) + 0x84) << exponent
    sample -= 0x84
    return -sample if sign else sample


_LINEAR = [ulaw_to_linear(b) for b in range(256)]


def linear_to_ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), 32635) + 0x84
    exponent = max(0, sample.bit_length() - 8)
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (min(exponent, 7) << 4) | mantissa) & 0xFF


def rms(frame: bytes) -> float:
    if not frame:
        return 0.0
    return math.sqrt(sum(_LINEAR[b] ** 2 for b in frame) / len(frame))


@functools.lru_cache(maxsize=16)
def tone(ms: int, hz: float = 440.0, level: int = 6000) -> bytes:
    """`ms` of a sine tone as 8 kHz μ-law: the fake assistant's voice (made once per length: a few
    seconds of it cost the fake's loop tens of ms)."""
    count = ms * 8
    return bytes(linear_to_ulaw(int(level * math.sin(2 * math.pi * hz * n / 8000))) for n in range(count))


@dataclass
class Turn:
    """What the fake hears in the caller's n-th utterance and what it does about it."""

    transcript: str
    say: str = ""
    audio_ms: int = 1000
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    drop_after: bool = False
    delta_bytes: int = DELTA_BYTES
    # Seconds between audio deltas: 0 sends them in one burst (as the real server often does); the
    # bench paces them at 0.02 to stream at real-time pace.
    delta_interval_s: float = 0.0
    # False: no `response.output_audio_transcript.done`; the transcript is only in `response.done`'s
    # output, as when a response ends before its transcript event.
    transcript_event: bool = True


@dataclass
class Connection:
    """One client connection: what it sent and what the fake did on it."""

    model: str
    received: list[dict[str, Any]] = field(default_factory=list)
    session: dict[str, Any] | None = None
    items: list[dict[str, Any]] = field(default_factory=list)  # conversation.item.create items
    truncations: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # error events sent
    audio_bytes_in: int = 0
    # When each input_audio_buffer.append arrived and each audio delta was sent (time.monotonic(), one
    # clock for every process on the machine): the bench's overhead figures.
    arrivals: list[float] = field(default_factory=list)
    delta_times: list[float] = field(default_factory=list)
    dropped: bool = False
    closed: bool = False


@dataclass
class _Speech:
    active: bool = False
    item_id: str = ""
    quiet_ms: int = 0


class FakeRealtime:
    def __init__(self, turns: list[Turn] | None = None, *, api_key: str = "sk-test") -> None:
        self.turns = list(turns or [])
        self.api_key = api_key
        self.connections: list[Connection] = []
        # Every assistant message item's audio length in bytes, in the order they were spoken.
        self.audio_items: list[tuple[str, int]] = []
        self.function_outputs: list[dict[str, Any]] = []
        self.next_turn = 0
        self.refused_handshakes = 0
        self._sessions: list[_Session] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # --- Lifecycle ---

    def start(self) -> FakeRealtime:
        self._thread = threading.Thread(target=self._run, name="fake-realtime", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("The fake Realtime server did not start")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, process_request=self._check_handshake, max_size=None) as server:
            self._server = server
            self._ready.set()
            await self._stopping.wait()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)

    def __enter__(self) -> FakeRealtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def ws_base(self) -> str:
        """The WebSocket base URL a client is pointed at (the SDK adds /realtime?model=…)."""
        return f"ws://127.0.0.1:{self.port}/v1"

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> Any:
        """Poll until `predicate()` is truthy (work done on the fake's own thread); None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := predicate():
                return value
            time.sleep(0.02)
        return None

    def speak(self, index: int, turn: Turn, *, wait: bool = True) -> None:
        """Make connection `index` answer with `turn` now, unprompted (the bench's outbound audio);
        with `wait`, return once the whole answer is sent."""
        assert self._loop is not None
        session = self._sessions[index]
        future = asyncio.run_coroutine_threadsafe(session.answer(turn), self._loop)
        if wait:
            future.result(60)

    # --- Serving ---

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != "/v1/realtime" or not parse_qs(url.query).get("model"):
            self.refused_handshakes += 1
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown path or no model\n")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.refused_handshakes += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Incorrect API key provided\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        model = parse_qs(urlsplit(ws.request.path if ws.request else "").query).get("model", [""])[0]
        conn = Connection(model=model)
        self.connections.append(conn)
        state = _Session(self, ws, conn)
        self._sessions.append(state)
        await state.send({"type": "session.created", "session": {"type": "realtime", "model": model}})
        try:
            async for raw in ws:
                event = json.loads(raw)
                conn.received.append(event)
                await state.on_event(event)
                if conn.dropped:
                    return
        except Exception:  # noqa: S110 (the client went away)
            pass
        finally:
            conn.closed = True


class _Session:
    """One connection's protocol state."""

    def __init__(self, fake: FakeRealtime, ws: ServerConnection, conn: Connection) -> None:
        self.fake, self.ws, self.conn = fake, ws, conn
        self.speech = _Speech()
        self.audio_ms = 0
        self.pending = b""
        self.last_item = ""
        self.item_audio: dict[str, int] = {}
        # The turn whose function calls wait for outputs, and how many of its calls are done.
        self.waiting: tuple[Turn, int] | None = None
        self.outputs_since_call: int = 0

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", "event_" + secrets.token_hex(8))
        if event["type"] == "error":
            self.conn.errors.append(event)
        await self.ws.send(json.dumps(event))

    async def error(self, message: str, code: str = "invalid_request_error") -> None:
        await self.send({"type": "error", "error": {"type": "invalid_request_error", "code": code, "message": message}})

    async def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.update":
            await self.session_update(event.get("session") or {})
        elif kind == "input_audio_buffer.append":
            self.conn.arrivals.append(time.monotonic())
            if self.conn.session is None:
                await self.error("Configure the session (audio formats) before sending audio.")
                return
            audio = base64.b64decode(event.get("audio", ""))
            self.conn.audio_bytes_in += len(audio)
            await self.hear(audio)
        elif kind == "conversation.item.create":
            item = event.get("item") or {}
            self.conn.items.append(item)
            if item.get("type") == "function_call_output":
                self.fake.function_outputs.append(item)
                self.outputs_since_call += 1
            await self.send({"type": "conversation.item.added", "item": {"id": _id("item"), **item}})
        elif kind == "response.create":
            await self.response_create()
        elif kind == "conversation.item.truncate":
            await self.truncate(event)

    async def session_update(self, session: dict[str, Any]) -> None:
        audio = session.get("audio") or {}
        formats = [((audio.get(leg) or {}).get("format") or {}).get("type") for leg in ("input", "output")]
        vad = ((audio.get("input") or {}).get("turn_detection") or {}).get("type")
        if session.get("type") != "realtime" or formats != ["audio/pcmu", "audio/pcmu"] or vad != "server_vad":
            await self.error(f"Unsupported session: formats {formats}, turn detection {vad!r}.")
            return
        self.conn.session = session
        await self.send({"type": "session.updated", "session": session})

    async def hear(self, audio: bytes) -> None:
        """Server VAD over 20 ms frames of the audio itself."""
        self.pending += audio
        while len(self.pending) >= FRAME_BYTES:
            frame, self.pending = self.pending[:FRAME_BYTES], self.pending[FRAME_BYTES:]
            self.audio_ms += 20
            loud = rms(frame) > SPEECH_RMS
            speech = self.speech
            if not speech.active:
                if loud:
                    speech.active, speech.item_id, speech.quiet_ms = True, _id("item"), 0
                    await self.send(
                        {
                            "type": "input_audio_buffer.speech_started",
                            "audio_start_ms": self.audio_ms - 20,
                            "item_id": speech.item_id,
                        }  # fmt: skip
                    )
                continue
            speech.quiet_ms = 0 if loud else speech.quiet_ms + 20
            if speech.quiet_ms >= SILENCE_MS:
                speech.active = False
                await self.utterance_ended(speech.item_id)
                if self.conn.dropped:
                    return

    async def utterance_ended(self, item_id: str) -> None:
        await self.send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": self.audio_ms, "item_id": item_id}
        )
        await self.send(
            {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": self.last_item}
        )
        self.last_item = item_id
        fake = self.fake
        turn = fake.turns[fake.next_turn] if fake.next_turn < len(fake.turns) else Turn("…", say="")
        fake.next_turn += 1
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": turn.transcript,
            }  # fmt: skip
        )
        await self.next_step(turn, 0)

    async def next_step(self, turn: Turn, done_calls: int) -> None:
        """The turn's next function call (then wait for its output), or its spoken answer."""
        if done_calls < len(turn.calls):
            name, arguments = turn.calls[done_calls]
            response_id, item_id, call_id = _id("resp"), _id("item"), _id("call")
            arguments_text = json.dumps(arguments)
            item = {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": ""}
            await self.send({"type": "response.created", "response": {"id": response_id, "status": "in_progress"}})
            await self.send(
                {"type": "response.output_item.added", "response_id": response_id, "output_index": 0, "item": item}
            )
            await self.send(
                {
                    "type": "response.function_call_arguments.done",
                    "response_id": response_id,
                    "item_id": item_id,
                    "output_index": 0,
                    "call_id": call_id,
                    "name": name,
                    "arguments": arguments_text,
                }  # fmt: skip
            )
            done = {**item, "arguments": arguments_text, "status": "completed"}
            await self.send(
                {"type": "response.done", "response": {"id": response_id, "status": "completed", "output": [done]}}
            )
            self.waiting, self.outputs_since_call = (turn, done_calls + 1), 0
            return
        await self.answer(turn)

    async def response_create(self) -> None:
        if self.waiting is None:
            return  # nothing scripted to say
        if self.outputs_since_call < 1:
            await self.error("response.create before the function call's output.")
            return
        turn, done_calls = self.waiting
        self.waiting = None
        await self.next_step(turn, done_calls)

    async def answer(self, turn: Turn) -> None:
        response_id, item_id = _id("resp"), _id("item")
        audio = tone(turn.audio_ms)
        self.item_audio[item_id] = len(audio)
        self.fake.audio_items.append((item_id, len(audio)))
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        await self.send({"type": "response.created", "response": {"id": response_id, "status": "in_progress"}})
        await self.send(
            {"type": "response.output_item.added", "response_id": response_id, "output_index": 0, "item": item}
        )
        for start in range(0, len(audio), turn.delta_bytes):
            chunk = base64.b64encode(audio[start : start + turn.delta_bytes]).decode()
            if turn.delta_interval_s and start:
                await asyncio.sleep(turn.delta_interval_s)
            self.conn.delta_times.append(time.monotonic())
            await self.send(
                {
                    "type": "response.output_audio.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": chunk,
                }  # fmt: skip
            )
        common = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        await self.send({"type": "response.output_audio.done", **common})
        if turn.transcript_event:
            await self.send({"type": "response.output_audio_transcript.done", **common, "transcript": turn.say})
        done = {**item, "status": "completed", "content": [{"type": "output_audio", "transcript": turn.say}]}
        await self.send(
            {"type": "response.done", "response": {"id": response_id, "status": "completed", "output": [done]}}
        )
        self.last_item = item_id
        if turn.drop_after:
            self.conn.dropped = True
            self.ws.transport.abort()  # no close frame: the connection just dies

    async def truncate(self, event: dict[str, Any]) -> None:
        item_id, end_ms = event.get("item_id"), event.get("audio_end_ms")
        length = self.item_audio.get(str(item_id))
        if length is None:
            await self.error(f"Item {item_id!r} does not exist.", "item_not_found")
            return
        if not isinstance(end_ms, int) or end_ms < 0 or end_ms > length // 8:
            await self.error(f"audio_end_ms {end_ms} is longer than the item's audio ({length // 8} ms).")
            return
        self.conn.truncations.append(event)
        await self.send(
            {"type": "conversation.item.truncated", "item_id": item_id, "content_index": 0, "audio_end_ms": end_ms}
        )


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
