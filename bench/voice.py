"""Voice benchmarks: the realtime bridge's overhead per 20 ms frame, and the streams one Daphne holds.

One Daphne process (as `make run` starts it) in realtime mode, pointed at the fake Realtime server
(talia.testing.fake_realtime, a thread of this process) and driven by Media Streams clients
(talia.testing.media_streams) that speak as Twilio does. Times are time.monotonic(), one clock for every
process on the machine.

- Overhead per frame, each way: a caller's `media` frame sent → its `input_audio_buffer.append` at the
  fake; an audio delta sent by the fake (one 20 ms frame each, every 20 ms) → its `media` message at the
  client. Both
  include the two loopback hops (client ↔ Daphne ↔ fake); the floor is the same frames between a bare
  websockets client and the fake directly (same process, same threads: what the harness itself costs).
- Inbound answer: a signed inbound call webhook → TalIA's TwiML (VoiceCall, conversation and events
  stored, the stream token signed), one call after another; the floor is the same request with a
  forged signature, refused at the signature check (the HTTP, Daphne and Django cost alone).
- Concurrent streams at real-time pace: N calls at once, each sending a 20 ms frame every 20 ms while
  the fake streams an answer to each, one 20 ms delta every 20 ms; N is held when every frame arrives and the p99 lag of the caller's
  frames stays under HELD_P99_MS. Steps up through STREAM_STEPS and reports the largest N held.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from bench.report import Report, Row, latency, ms

HELD_P99_MS = 100.0
STREAM_STEPS = (1, 5, 10, 25, 50, 75, 100)
STREAM_SECONDS = 6
FRAME_S = 0.02
API_KEY = "sk-bench-realtime"


def _frame(index: int) -> bytes:
    """A quiet 20 ms frame (the fake's VAD hears no speech), numbered in its first bytes (μ-law 0xF0-0xFF
    are the quietest samples)."""
    return bytes(0xF0 | (index >> shift) & 0x0F for shift in (12, 8, 4, 0)) + b"\xff" * 156


def _dial(url: str, token: str) -> tuple[str, str, dict[str, str]]:
    from twilio.request_validator import RequestValidator

    call_sid = "CA" + secrets.token_hex(16)
    params = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": f"+3460{secrets.randbelow(10**7):07d}",
              "To": "+34910000000", "CallStatus": "ringing", "Direction": "inbound"}  # fmt: skip
    webhook = f"{url}/api/voice/inbound"
    request = urllib.request.Request(  # noqa: S310  (our own http:// URL)
        webhook,
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": RequestValidator(token).compute_signature(webhook, params)},
    )
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
        root = ET.fromstring(response.read())  # noqa: S314  (our own answer)
    stream = root.find("Connect/Stream")
    if stream is None:
        raise RuntimeError("TalIA did not answer with a media stream: is realtime mode on?")
    return call_sid, stream.get("url", ""), {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}


async def _direct(frames: int, fake: Any, turn: Any) -> tuple[list[float], list[float]]:
    """The floor: the same frames between a bare websockets client and the fake, with no bridge between
    (same harness, same threads), each way: (client → fake, fake → client) latencies in ms."""
    from websockets.asyncio.client import connect

    session = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection":
               {"type": "server_vad"}}, "output": {"format": {"type": "audio/pcmu"}}}}  # fmt: skip
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with connect(f"{fake.ws_base}/realtime?model=floor", additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        index = len(fake.connections) - 1
        connection = fake.connections[index]
        sent = []
        for i in range(frames):
            sent.append(time.monotonic())
            await ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(_frame(i)).decode()})
            )
            await asyncio.sleep(FRAME_S)
        arrivals: list[float] = []

        async def read() -> None:
            async for raw in ws:
                if json.loads(raw)["type"] == "response.output_audio.delta":
                    arrivals.append(time.monotonic())
                    if len(arrivals) == frames:
                        return

        reader = asyncio.create_task(read())
        await asyncio.to_thread(
            fake.speak, index, turn("", audio_ms=frames * 20, delta_bytes=160, delta_interval_s=FRAME_S)
        )
        await asyncio.wait_for(reader, 30)
    inbound = [(a - s) * 1000 for s, a in zip(sent, connection.arrivals[-frames:], strict=True)]
    outbound = [(a - s) * 1000 for s, a in zip(connection.delta_times[-frames:], arrivals, strict=True)]
    return inbound, outbound


def bench_voice(runs: int, report: Report) -> None:
    from bench.run import start_daphne
    from talia.testing.fake_realtime import FakeRealtime, Turn, tone
    from talia.testing.media_streams import MediaStreamClient

    token = secrets.token_hex(16)
    tone(STREAM_SECONDS * 1000)  # the answers' audio, made before any clock runs
    with FakeRealtime(api_key=API_KEY) as fake:
        os.environ.update(
            TALIA_TWILIO_AUTH_TOKEN=token,
            TALIA_VOICE_MODE="realtime",
            OPENAI_API_KEY=API_KEY,
            TALIA_OPENAI_REALTIME_URL=fake.ws_base,
        )
        log_path = Path(os.environ["TALIA_VAR_DIR"]) / f"daphne-bench-voice-{int(time.time())}.log"
        process, url = start_daphne(log_path)
        try:
            _inbound(runs, report, url, token)
            _overhead(runs, report, fake, url, token, MediaStreamClient, Turn)
            _concurrency(report, fake, url, token, MediaStreamClient, Turn)
        finally:
            process.terminate()
            process.wait(10)
            for name in ("TALIA_VOICE_MODE", "OPENAI_API_KEY", "TALIA_OPENAI_REALTIME_URL"):
                os.environ.pop(name, None)


def _inbound(runs: int, report: Report, url: str, token: str) -> None:
    calls = max(runs, 50) * 2
    answered: list[float] = []
    refused: list[float] = []
    for _ in range(calls):
        started = time.monotonic()
        _dial(url, token)
        answered.append((time.monotonic() - started) * 1000)
        started = time.monotonic()
        try:
            _dial(url, "not-" + token)
        except urllib.error.HTTPError as refusal:
            if refusal.code != 403:
                raise
        else:
            raise RuntimeError("a forged inbound webhook was answered")
        refused.append((time.monotonic() - started) * 1000)
    figures, floor = latency(answered), latency(refused)
    ratio = figures["p50_ms"] / floor["p50_ms"] if floor["p50_ms"] else None
    report.add(
        Row(
            "voice",
            "inbound call → TwiML (signed, stored)",
            ms(figures),
            ms(floor),
            ratio,
            figures={**figures, "floor": floor},
        )
    )


def _overhead(runs: int, report: Report, fake: Any, url: str, token: str, client: Any, turn: Any) -> None:
    frames = max(runs, 50) * 5
    call_sid, stream_url, parameters = _dial(url, token)

    async def one_call() -> Any:
        async with client(stream_url, call_sid, parameters) as phone:
            if not fake.wait_for(lambda: fake.connections and fake.connections[-1].session, 20):
                raise RuntimeError("the bridge opened no Realtime session")
            for i in range(frames):
                await phone.frame(_frame(i))
                await asyncio.sleep(FRAME_S)
            connection = fake.connections[-1]
            await asyncio.to_thread(fake.wait_for, lambda: len(connection.arrivals) >= frames, 20)
            await asyncio.to_thread(
                fake.speak,
                len(fake.connections) - 1,
                turn("", audio_ms=frames * 20, delta_bytes=160, delta_interval_s=FRAME_S),
            )
            await phone.until(lambda: len(phone.media_arrivals) >= frames)
            return phone, connection

    phone, connection = asyncio.run(one_call())
    inbound = [(a - s) * 1000 for s, a in zip(phone.sent_times, connection.arrivals[-frames:], strict=True)]
    outbound = [(a - s) * 1000 for s, a in zip(connection.delta_times[-frames:], phone.media_arrivals, strict=True)]
    direct_in, direct_out = asyncio.run(_direct(frames, fake, turn))
    for work, samples, floor_samples in (("caller frame → Realtime (through Daphne)", inbound, direct_in),
                                         ("Realtime delta → Twilio (through Daphne)", outbound, direct_out)):  # fmt: skip
        figures, floor = latency(samples), latency(floor_samples)
        ratio = figures["p99_ms"] / floor["p99_ms"] if floor["p99_ms"] else None
        report.add(Row("voice", work, ms(figures), ms(floor), ratio, figures={**figures, "floor": floor}))


def _concurrency(report: Report, fake: Any, url: str, token: str, client: Any, turn: Any) -> None:
    held = 0
    for streams in STREAM_STEPS:
        lags, lost = asyncio.run(_streams(streams, fake, url, token, client, turn))
        figures = latency(lags) if lags else {"p99_ms": float("inf")}
        ok = not lost and figures["p99_ms"] < HELD_P99_MS
        print(f"  {streams:>4} streams: caller-frame lag p50 {figures.get('p50_ms')} ms, p99 {figures['p99_ms']} ms, "
              f"{lost} frames lost -> {'held' if ok else 'NOT held'}", flush=True)  # fmt: skip
        if not ok:
            break
        held = streams
    report.add(
        Row(
            "voice",
            f"streams held at real-time pace (p99 lag < {HELD_P99_MS:.0f} ms, none lost)",
            f"{held}",
            figures={"streams": held, "steps": list(STREAM_STEPS)},
        )  # fmt: skip
    )


async def _streams(count: int, fake: Any, url: str, token: str, client: Any, turn: Any) -> tuple[list[float], int]:
    dialled = [await asyncio.to_thread(_dial, url, token) for _ in range(count)]
    frames = int(STREAM_SECONDS / FRAME_S)
    phones = []
    try:
        for call_sid, stream_url, parameters in dialled:
            phone = client(stream_url, call_sid, parameters)
            await phone.__aenter__()
            phones.append(phone)
            before = len(fake.connections)

            def opened(before: int = before) -> bool:
                return len(fake.connections) > before and fake.connections[before].session is not None

            if not await asyncio.to_thread(fake.wait_for, opened, 20):
                raise RuntimeError("a stream opened no Realtime session")
        connections = fake.connections[-count:]
        first = len(fake.connections) - count

        async def talk(phone: Any) -> None:
            start = time.monotonic()
            for i in range(frames):
                await phone.frame(_frame(i))
                # Real-time pace from the call's own start, so a late frame does not delay the next.
                await asyncio.sleep(max(0.0, start + (i + 1) * FRAME_S - time.monotonic()))

        for n in range(count):  # each answer streams at real-time pace, as the caller talks
            fake.speak(first + n, turn("", audio_ms=STREAM_SECONDS * 1000, delta_bytes=160, delta_interval_s=FRAME_S),
                       wait=False)  # fmt: skip
        await asyncio.gather(*(talk(phone) for phone in phones))
        await asyncio.to_thread(fake.wait_for, lambda: all(len(c.arrivals) >= frames for c in connections), 10)
    finally:
        await asyncio.gather(*(phone.stop() for phone in phones), return_exceptions=True)
    lags: list[float] = []
    lost = 0
    for phone, connection in zip(phones, connections, strict=True):
        arrived = connection.arrivals[-frames:] if len(connection.arrivals) >= frames else connection.arrivals
        lost += frames - len(arrived)
        lags += [(a - s) * 1000 for s, a in zip(phone.sent_times[-len(arrived) :], arrived, strict=False)]
    return lags, lost
