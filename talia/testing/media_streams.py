"""Twilio's side of a media stream, for tests and the bench: real speech in, marks echoed like Twilio.

    audio = speech("Hola, soy Ana García", "es")            # espeak-ng -> sox: 8 kHz μ-law bytes
    async with MediaStreamClient(url, call_sid, parameters, pace=4) as phone:
        await phone.say(audio)                                # 20 ms frames, then trailing silence
        await phone.wait_heard(bytes_=8000)                   # the assistant's audio, played out

The client does what Twilio does (../shared/PROTOCOLS.md §3): `connected`, then `start` with the
TwiML's `<Parameter>`s as `customParameters`, `media` frames of 160 bytes (20 ms) with string chunk
numbers and timestamps, `stop` at the end. Outbound `media` is queued and played at real-time pace
(times `pace`) and each `mark` is echoed once the audio queued before it has played; `clear` throws the
unplayed audio away and echoes every pending mark at once. `hold()` pauses playback (what the caller
heard stays what the echoed marks say); the next `clear` resumes it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

FRAME_BYTES = 160
FRAME_S = 0.02
SILENCE = b"\xff"  # μ-law silence


def speech(text: str, language: str = "es") -> bytes:
    """`text` spoken by espeak-ng, as raw 8 kHz μ-law (sox); skips the test when either is missing."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        pytest.skip("espeak-ng and sox are needed to make real speech (apt-get install espeak-ng sox)")
    with tempfile.TemporaryDirectory() as scratch:
        wav, ulaw = Path(scratch) / "speech.wav", Path(scratch) / "speech.ul"
        subprocess.run([espeak, "-v", language, "-s", "170", "-w", str(wav), text], check=True, capture_output=True)
        subprocess.run(
            [sox, str(wav), "-t", "raw", "-r", "8000", "-c", "1", "-e", "mu-law", str(ulaw)],
            check=True,
            capture_output=True,
        )
        return ulaw.read_bytes()


@dataclass
class Mark:
    name: str
    position: int  # outbound bytes queued before it, from the stream's start
    echoed: str = ""  # "played" or "cleared"


@dataclass
class MediaStreamClient:
    url: str
    call_sid: str
    parameters: dict[str, str]
    pace: float = 1.0
    account_sid: str = "AC" + "1" * 32
    stream_sid: str = field(default_factory=lambda: "MZ" + secrets.token_hex(16))
    # What TalIA sent, in order (media, mark, clear), and what was done with it.
    received: list[dict[str, Any]] = field(default_factory=list)
    received_bytes: int = 0  # outbound audio bytes received in all
    queued: int = 0  # outbound bytes queued for playback (a clear drops what was not played)
    played: int = 0  # outbound bytes played
    marks: list[Mark] = field(default_factory=list)
    clears: list[int] = field(default_factory=list)  # `acknowledged` when each clear arrived
    close_code: int | None = None
    # time.monotonic() of each media frame sent and each outbound media received (the bench's figures).
    sent_times: list[float] = field(default_factory=list)
    media_arrivals: list[float] = field(default_factory=list)
    ws: ClientConnection | None = None
    held: bool = False
    _sequence: int = 0
    _chunk: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _started: float = 0.0

    async def __aenter__(self) -> MediaStreamClient:
        self.ws = await connect(self.url, max_size=None)
        self._started = time.monotonic()
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send(
            {
                "event": "start",
                "sequenceNumber": self._next(),
                "streamSid": self.stream_sid,
                "start": {
                    "streamSid": self.stream_sid,
                    "accountSid": self.account_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._play())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    # --- The caller ---

    async def say(self, audio: bytes, *, trailing_silence_ms: int = 800) -> None:
        """Send `audio` then silence as 20 ms frames, at real-time pace (times `pace`)."""
        audio = audio + SILENCE * (trailing_silence_ms * 8)
        audio += SILENCE * (-len(audio) % FRAME_BYTES)
        for start in range(0, len(audio), FRAME_BYTES):
            try:
                await self.frame(audio[start : start + FRAME_BYTES])
            except ConnectionClosed:
                return  # TalIA ended the stream (a hand-over, a fallback): the caller stops talking into it
            await asyncio.sleep(FRAME_S / self.pace)

    async def silence(self, ms: int) -> None:
        await self.say(b"", trailing_silence_ms=ms)

    async def frame(self, payload: bytes) -> None:
        self._chunk += 1
        timestamp = str(self._chunk * 20 - 20)
        self.sent_times.append(time.monotonic())
        await self._send(
            {
                "event": "media",
                "sequenceNumber": self._next(),
                "streamSid": self.stream_sid,
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": timestamp,
                    "payload": base64.b64encode(payload).decode(),
                },
            }
        )

    def hold(self) -> None:
        """Pause playback here (until the next clear): what was heard is what the echoed marks say."""
        self.held = True

    async def stop(self) -> None:
        if self.ws is None:
            return
        if not self.closed:
            with contextlib.suppress(Exception):
                await self._send(
                    {
                        "event": "stop",
                        "sequenceNumber": self._next(),
                        "streamSid": self.stream_sid,
                        "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                    }  # fmt: skip
                )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 10)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.close_code = self.ws.close_code

    @property
    def closed(self) -> bool:
        return self.ws is None or self.ws.close_code is not None

    # --- What TalIA sends ---

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                self.received.append(message)
                event = message.get("event")
                if event == "media":
                    self.media_arrivals.append(time.monotonic())
                    size = len(base64.b64decode(message["media"]["payload"]))
                    self.received_bytes += size
                    self.queued += size
                elif event == "mark":
                    self.marks.append(Mark(message["mark"]["name"], self.queued))
                    await self._echo_played()
                elif event == "clear":
                    self.clears.append(self.acknowledged)
                    self.queued = self.played
                    for mark in self.marks:
                        if not mark.echoed:
                            mark.echoed = "cleared"
                            await self._echo(mark)
                    self.held = False
        except Exception:  # noqa: S110 (the socket closed: the reader just ends)
            pass
        finally:
            self.close_code = self.ws.close_code

    async def _play(self) -> None:
        while True:
            await asyncio.sleep(FRAME_S / self.pace)
            if not self.held and self.played < self.queued:
                self.played = min(self.queued, self.played + FRAME_BYTES)
                await self._echo_played()

    async def _echo_played(self) -> None:
        for mark in self.marks:
            if not mark.echoed and mark.position <= self.played:
                mark.echoed = "played"
                await self._echo(mark)

    async def _echo(self, mark: Mark) -> None:
        with contextlib.suppress(Exception):
            await self._send(
                {
                    "event": "mark",
                    "sequenceNumber": self._next(),
                    "streamSid": self.stream_sid,
                    "mark": {"name": mark.name},
                }  # fmt: skip
            )

    @property
    def acknowledged(self) -> int:
        """Outbound bytes the echoed-as-played marks say were heard."""
        return max((mark.position for mark in self.marks if mark.echoed == "played"), default=0)

    async def wait_played(self, position: int, timeout: float = 30.0) -> bool:
        """Wait until `position` outbound bytes were played; False if the socket closed or time ran out."""
        deadline = time.monotonic() + timeout
        while self.played < position:
            if self.closed or time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def until(self, predicate: Any, timeout: float = 30.0) -> bool:
        """Wait until `predicate()` holds; False if the socket closed first or time ran out."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.closed or time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def wait_closed(self, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.closed:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True
