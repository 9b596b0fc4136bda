"""What a media stream's audio costs per frame, counted (not timed: speed is measured in bench/voice.py).

A call brings 50 caller frames a second, and as many audio deltas out, each followed by a mark that
Twilio echoes. On that path, once the stream has started: no SQL statement, no asyncio task created,
and each caller payload reaches the Realtime API as the very base64 text Twilio sent (never decoded
and re-encoded). Driven in process through Channels' communicator against the real stream app, the
real bridge and SDK, and the fake Realtime server on a real socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from channels_voice.consumers import MediaStreamApp
from channels_voice.tests.conftest import Caller, child
from talia.testing.fake_realtime import FakeRealtime
from talia.tests.test_socket_costs import Statements

pytestmark = pytest.mark.django_db(transaction=True)

API_KEY = "sk-stream-costs"
FRAMES = 40


@pytest.fixture
def realtime(settings: Any) -> Iterator[FakeRealtime]:
    with FakeRealtime(api_key=API_KEY) as fake:
        settings.TALIA_VOICE_MODE = "realtime"
        settings.OPENAI_API_KEY = API_KEY
        settings.TALIA_OPENAI_REALTIME_URL = fake.ws_base
        yield fake


class TaskCount:
    """Tasks created on the running loop while inside."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> TaskCount:
        loop = asyncio.get_running_loop()
        self.loop, self.previous = loop, loop.get_task_factory()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            self.count += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.set_task_factory(self.previous)


def media(index: int, stream_sid: str) -> dict[str, Any]:
    # Quiet μ-law (the fake's VAD hears no speech), distinct per frame, ending in a base64 text that a
    # decode-and-encode round trip would change: "/x==" is the byte 0xFF with non-zero padding bits,
    # which an encoder writes "/w==".
    payload = base64.b64encode(bytes([0xF0 | index % 16]) * 159).decode() + "/x=="
    return {"event": "media", "sequenceNumber": str(index + 3), "streamSid": stream_sid,
            "media": {"track": "inbound", "chunk": str(index + 1), "timestamp": str(index * 20), "payload": payload}}  # fmt: skip


async def test_caller_frames_pass_through_with_no_sql_and_no_task_per_frame(caller: Caller, realtime: FakeRealtime):
    root = await sync_to_async(caller.dial)()
    stream = child(root, "Connect/Stream")
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
    stream_sid = "MZ" + "5" * 32
    socket = WebsocketCommunicator(MediaStreamApp(), "/api/voice/stream")
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    await socket.send_json_to(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream_sid,
            "start": {"streamSid": stream_sid, "callSid": caller.call_sid, "customParameters": parameters},
        }  # fmt: skip
    )
    assert await asyncio.to_thread(realtime.wait_for, lambda: realtime.connections and realtime.connections[0].session)
    frames = [media(i, stream_sid) for i in range(FRAMES)]

    async with Statements() as statements:
        with TaskCount() as tasks:
            for frame in frames:
                await socket.send_to(text_data=json.dumps(frame))
            arrived = await asyncio.to_thread(
                realtime.wait_for, lambda: len(realtime.connections[0].arrivals) >= FRAMES
            )

    appended = [e["audio"] for e in realtime.connections[0].received if e["type"] == "input_audio_buffer.append"]
    assert arrived and appended == [frame["media"]["payload"] for frame in frames]
    assert statements.count == 0
    assert tasks.count == 0
    await socket.send_json_to({"event": "stop", "sequenceNumber": "99", "streamSid": stream_sid})
    assert (await socket.receive_output(timeout=10))["type"] == "websocket.close"
    await socket.disconnect()
