"""Voice benchmarks: the realtime bridge's overhead per 20 ms frame, and the streams one Daphne holds.

One Daphne process (as `make run` starts it) in realtime mode, pointed at the fake Realtime server
(talia.testing.fake_realtime) and driven by Media Streams clients (talia.testing.media_streams) that
speak as Twilio does. Daphne, the fake and the clients are separate processes (the fake in one process
of its own, the clients in BENCH_VOICE_CLIENT_PROCS processes, default 2), so what saturates first shows
in each process's CPU, which every step prints (psutil, over the talking window). Times are
time.monotonic(), one clock for every process on the machine.

Each caller frame is numbered (call and frame index, in the first bytes of its quiet μ-law audio), and
the fake's record of the `input_audio_buffer.append`s it got is decoded back into those numbers: a lag
is always the same frame's, a lost frame is counted, and each fake connection is known by its call.

- Overhead per frame, each way: a caller's `media` frame sent → its `input_audio_buffer.append` at the
  fake; an audio delta sent by the fake (one 20 ms frame each, every 20 ms) → its `media` message at the
  client. Both include the two loopback hops (client ↔ Daphne ↔ fake); the floor is the same frames
  between a bare websockets client (compression off, as on both of the bridge's legs) and the fake
  directly, from the same client process. Also Daphne's CPU time per bridged frame (in and out), a
  figure the machine's load inflates far less than a p99.
- Inbound answer: a signed inbound call webhook → TalIA's TwiML (VoiceCall, conversation and events
  stored, the stream token signed), one call after another; the floor is the same request with a
  forged signature, refused at the signature check (the HTTP, Daphne and Django cost alone).
- Concurrent streams at real-time pace: N calls at once, each sending a 20 ms frame every 20 ms while
  the fake streams an answer to each, one 20 ms delta every 20 ms; N is held when every frame arrives
  both ways and the p99 lag stays under HELD_P99_MS each way. Steps up through STREAM_STEPS (or
  BENCH_VOICE_STREAMS), running a failed step once more, and reports the largest N held, with each
  process's CPU at each step; then Daphne's CPU per stream at the largest N held, and the streams one
  core would carry at it (a projection from CPU time).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.report import Report, Row, latency, ms

HELD_P99_MS = 100.0
STREAM_STEPS = (1, 5, 10, 25, 50, 75, 100)
STREAM_SECONDS = 6
IDLE_S = 3.0
PROJECTION_MIN_STREAMS = 10
FRAME_S = 0.02
FRAME_BYTES = 160
API_KEY = "sk-bench-realtime"
SPAWN = multiprocessing.get_context("spawn")  # no forked copy of this process's threads and connections


def _frame(call: int, index: int) -> bytes:
    """A quiet 20 ms frame (the fake's VAD hears no speech), numbered in its first bytes: the frame's
    index, then its call's (μ-law 0xF0-0xFF are the quietest samples)."""
    head = [0xF0 | (number >> shift) & 0x0F for number in (index, call) for shift in (12, 8, 4, 0)]
    return bytes(head) + b"\xff" * (FRAME_BYTES - len(head))


def _numbers(audio: str) -> tuple[int, int]:
    """(call, index) of a numbered frame's base64 audio."""
    head = base64.b64decode(audio[:12])
    index = call = 0
    for byte in head[:4]:
        index = index << 4 | byte & 0x0F
    for byte in head[4:8]:
        call = call << 4 | byte & 0x0F
    return call, index


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


# --- The fake Realtime server, in a process of its own -------------------------------------------------


def _fake_main(pipe: Connection, tone_lengths: list[int]) -> None:
    """The fake's process: serve, and answer the bench's commands on `pipe` until it closes."""
    from talia.testing.fake_realtime import FakeRealtime, Turn, tone

    for length in tone_lengths:
        tone(length)  # the answers' audio, made before any clock runs
    with FakeRealtime(api_key=API_KEY) as fake:
        pipe.send(fake.ws_base)
        while True:
            try:
                name, *args = pipe.recv()
            except EOFError:
                return
            if name == "stop":
                pipe.send(None)
                return
            if name == "sessions":  # how many connections from args[0] on have a session
                pipe.send(sum(c.session is not None for c in fake.connections[args[0] :]))
            elif name == "count":
                pipe.send(len(fake.connections))
            elif name == "speak":  # answer on connections args[0], `args[1]` ms of audio each, paced
                indexes, audio_ms, wait = args
                turn = Turn("", audio_ms=audio_ms, delta_bytes=FRAME_BYTES, delta_interval_s=FRAME_S)
                for index in indexes:
                    fake.speak(index, turn, wait=wait)
                pipe.send(None)
            elif name == "arrivals":  # per connection from args[0] on: its numbered appends and deltas
                records = []
                for connection in fake.connections[args[0] :]:
                    appends = [e for e in connection.received if e.get("type") == "input_audio_buffer.append"]
                    frames = [
                        (*_numbers(e.get("audio", "")), at) for e, at in zip(appends, connection.arrivals, strict=False)
                    ]
                    records.append({"frames": frames, "deltas": list(connection.delta_times)})
                pipe.send(records)


class FakeProcess:
    """The fake Realtime server in its own process, driven over a pipe."""

    def __init__(self, tone_lengths: list[int]) -> None:
        self.pipe, child = SPAWN.Pipe()
        self.process = SPAWN.Process(target=_fake_main, args=(child, tone_lengths), name="fake-realtime", daemon=True)
        self.process.start()
        if not self.pipe.poll(60):
            raise RuntimeError("the fake Realtime process did not start")
        self.ws_base: str = self.pipe.recv()

    def ask(self, *command: Any) -> Any:
        self.pipe.send(command)
        return self.pipe.recv()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            self.ask("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


# --- Callers, in processes of their own ------------------------------------------------------------------


class _Direct:
    """The floor's caller: the Realtime protocol straight to the fake, no bridge between."""

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        self.media_arrivals: list[float] = []
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        session = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection":
                   {"type": "server_vad"}}, "output": {"format": {"type": "audio/pcmu"}}}}  # fmt: skip
        headers = {"Authorization": f"Bearer {API_KEY}"}
        self.ws = await connect(self.ws_url, additional_headers=headers, compression=None, max_size=None)
        await self.ws.send(json.dumps({"type": "session.update", "session": session}))
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            if json.loads(raw)["type"] == "response.output_audio.delta":
                self.media_arrivals.append(time.monotonic())

    async def frame(self, audio: bytes) -> None:
        await self.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}))

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        await self.ws.close()


def _client_main(pipe: Connection, jobs: list[dict[str, Any]], frames: int, media: int) -> None:
    asyncio.run(_client(pipe, jobs, frames, media))


async def _client(pipe: Connection, jobs: list[dict[str, Any]], frames: int, media: int) -> None:
    """One client process: open every job's stream, say ready, wait for go, talk `frames` frames at
    real-time pace on each, wait for `media` outbound frames on each, and send back what happened."""
    from talia.testing.media_streams import MediaStreamClient

    callers: list[tuple[int, Any]] = []
    for job in jobs:
        if job["kind"] == "direct":
            caller: Any = _Direct(job["url"])
            await caller.open()
        else:
            caller = MediaStreamClient(job["url"], job["call_sid"], job["parameters"])
            await caller.__aenter__()
        callers.append((job["call"], caller))
    pipe.send("ready")
    await asyncio.to_thread(pipe.recv)  # go
    sent: list[tuple[int, int, float]] = []

    async def talk(call: int, caller: Any) -> None:
        start = time.monotonic()
        for index in range(frames):
            sent.append((call, index, time.monotonic()))
            await caller.frame(_frame(call, index))
            # Real-time pace from the call's own start, so a late frame does not delay the next.
            await asyncio.sleep(max(0.0, start + (index + 1) * FRAME_S - time.monotonic()))

    async def listen(caller: Any) -> None:
        deadline = time.monotonic() + 30 + media * FRAME_S
        while len(caller.media_arrivals) < media and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    await asyncio.gather(*(talk(call, caller) for call, caller in callers))
    pipe.send("talked")
    await asyncio.gather(*(listen(caller) for _, caller in callers))
    await asyncio.gather(*(caller.stop() for _, caller in callers), return_exceptions=True)
    pipe.send({"sent": sent, "media": {call: list(caller.media_arrivals) for call, caller in callers}})


class Callers:
    """Jobs spread over client processes; each step of the protocol waits for all of them."""

    def __init__(self, jobs: list[dict[str, Any]], processes: int, frames: int, media: int) -> None:
        count = max(1, min(processes, len(jobs)))
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for n in range(count):
            pipe, child = SPAWN.Pipe()
            process = SPAWN.Process(target=_client_main, args=(child, jobs[n::count], frames, media), daemon=True)
            process.start()
            self.pipes.append(pipe)
            self.processes.append(process)

    def expect(self, what: str, timeout: float = 120.0) -> list[Any]:
        answers = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise RuntimeError(f"a client process did not report {what!r}")
            answers.append(pipe.recv())
        return answers

    def go(self) -> None:
        for pipe in self.pipes:
            pipe.send("go")

    def join(self) -> None:
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()


class CPU:
    """CPU seconds of some processes over a window, as shares of one core, and how often the kernel
    preempted each (involuntary context switches: the machine's other work taking the core from it)."""

    def __init__(self, processes: dict[str, int]) -> None:
        import psutil

        self.processes = {name: psutil.Process(pid) for name, pid in processes.items()}
        self.started = time.monotonic()
        self.before = {name: self._sample(p) for name, p in self.processes.items()}

    @staticmethod
    def _sample(process: Any) -> tuple[float, int, float]:
        times = process.cpu_times()
        return float(times.user + times.system), int(process.num_ctx_switches().involuntary), _waited(process.pid)

    def stop(self) -> dict[str, dict[str, float]]:
        wall = time.monotonic() - self.started
        figures: dict[str, dict[str, float]] = {}
        for name, process in self.processes.items():
            seconds, preempted, waited = self._sample(process)
            used = seconds - self.before[name][0]
            figures[name] = {
                "cpu_s": round(used, 3),
                "core_share": round(used / wall, 3),
                "preempted": preempted - self.before[name][1],
                "waited_s": round(waited - self.before[name][2], 3),
            }
        return figures | {"wall": {"cpu_s": round(wall, 3), "core_share": 1.0, "preempted": 0, "waited_s": 0.0}}


def _waited(pid: int) -> float:
    """Seconds the process's threads have spent runnable but waiting for a core, summed
    (/proc/<pid>/task/<tid>/schedstat: time on a core, time waiting, timeslices)."""
    total = 0.0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total


def _shares(cpu: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{name} {v['core_share'] * 100:.0f}%" for name, v in cpu.items() if name != "wall")


def _preempted(cpu: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{name} {v['preempted']:.0f}" for name, v in cpu.items() if name != "wall")


def _waits(cpu: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{name} {v['waited_s']:.2f} s" for name, v in cpu.items() if name != "wall")


# --- The scenarios ---------------------------------------------------------------------------------------


def bench_voice(runs: int, report: Report) -> None:
    from bench.run import start_daphne

    token = secrets.token_hex(16)
    frames = max(runs, 50) * 5
    fake = FakeProcess([STREAM_SECONDS * 1000, frames * 20])
    try:
        os.environ.update(
            TALIA_TWILIO_AUTH_TOKEN=token,
            TALIA_VOICE_MODE="realtime",
            OPENAI_API_KEY=API_KEY,
            TALIA_OPENAI_REALTIME_URL=fake.ws_base,
        )
        log_path = Path(os.environ["TALIA_VAR_DIR"]) / f"daphne-bench-voice-{int(time.time())}.log"
        process, url = start_daphne(log_path)
        try:
            idle = CPU({"daphne": process.pid})
            time.sleep(IDLE_S)
            print(f"  Daphne idle (no calls, {IDLE_S:.0f} s): {_shares(idle.stop())} of a core", flush=True)
            _inbound(runs, report, url, token)
            _overhead(frames, report, fake, process.pid, url, token)
            from bench.message_path import start_profilers, stop_profilers

            profilers = start_profilers({"voice-daphne": process.pid}, log_path.parent)
            try:
                _concurrency(report, fake, process.pid, url, token)
            finally:
                stop_profilers(profilers)
        finally:
            process.terminate()
            process.wait(10)
            for name in ("TALIA_VOICE_MODE", "OPENAI_API_KEY", "TALIA_OPENAI_REALTIME_URL"):
                os.environ.pop(name, None)
        tracebacks = log_path.read_text(errors="replace").count("Traceback")
        print(f"  daphne log: {tracebacks} tracebacks ({log_path})", flush=True)
    finally:
        fake.stop()


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


def _one_way(fake: FakeProcess, job: dict[str, Any], frames: int, daphne: int | None) -> dict[str, Any]:
    """One caller's `frames` frames in, then as many deltas out, from a client process of its own."""
    first = fake.ask("count")
    callers = Callers([job], 1, frames, frames)
    try:
        callers.expect("ready")
        if not fake.wait_for(lambda: fake.ask("sessions", first) >= 1):
            raise RuntimeError("the caller opened no Realtime session")
        cpu = CPU({"daphne": daphne} if daphne else {})
        callers.go()
        callers.expect("talked")
        if not fake.wait_for(lambda: len(fake.ask("arrivals", first)[0]["frames"]) >= frames):
            raise RuntimeError("frames went missing on the way in")
        fake.ask("speak", [first], frames * 20, True)
        (result,) = callers.expect("done")
        used = cpu.stop()
    finally:
        callers.join()
    record = fake.ask("arrivals", first)[0]
    sent = {index: at for _, index, at in result["sent"]}
    inbound = [(at - sent[index]) * 1000 for _, index, at in record["frames"]]
    outbound = [(a - s) * 1000 for s, a in zip(record["deltas"], result["media"][job["call"]], strict=False)]
    return {"in": inbound, "out": outbound, "cpu": used}


def _overhead(frames: int, report: Report, fake: FakeProcess, daphne: int, url: str, token: str) -> None:
    call_sid, stream_url, parameters = _dial(url, token)
    job = {"kind": "phone", "call": 1, "url": stream_url, "call_sid": call_sid, "parameters": parameters}
    bridged = _one_way(fake, job, frames, daphne)
    direct = _one_way(fake, {"kind": "direct", "call": 0, "url": f"{fake.ws_base}/realtime?model=floor"}, frames, None)
    for work, way in (("caller frame → Realtime (through Daphne)", "in"), ("Realtime delta → Twilio (through Daphne)", "out")):  # fmt: skip
        figures, floor = latency(bridged[way]), latency(direct[way])
        ratio = figures["p99_ms"] / floor["p99_ms"] if floor["p99_ms"] else None
        report.add(Row("voice", work, ms(figures), ms(floor), ratio, figures={**figures, "floor": floor}))
    daphne_cpu = bridged["cpu"]["daphne"]["cpu_s"]
    per_frame_us = daphne_cpu / (2 * frames) * 1e6
    report.add(
        Row(
            "voice",
            "Daphne CPU per bridged 20 ms frame (in + out, one call)",
            f"{per_frame_us:.0f} µs",
            figures={"cpu_s": daphne_cpu, "frames": 2 * frames, "us_per_frame": round(per_frame_us, 1)},
        )
    )


def _held(step: dict[str, Any]) -> bool:
    return not step["lost_in"] and not step["lost_out"] and max(step["p99_in_ms"], step["p99_out_ms"]) < HELD_P99_MS


def _concurrency(report: Report, fake: FakeProcess, daphne: int, url: str, token: str) -> None:
    processes = int(os.environ.get("BENCH_VOICE_CLIENT_PROCS", "2"))
    held = 0
    steps = []
    steps_wanted = os.environ.get("BENCH_VOICE_STREAMS")
    for streams in [int(n) for n in steps_wanted.split(",")] if steps_wanted else STREAM_STEPS:
        # A step that fails is run once more: on a shared machine one burst of other work can stall
        # every process for a moment; the count stops at the first step that fails twice.
        for attempt in (1, 2):
            step = _streams(streams, processes, fake, daphne, url, token)
            step["attempt"] = attempt
            steps.append(step)
            ok = _held(step)
            print(
                f"  {streams:>4} streams: lag in p50 {step['p50_in_ms']} p99 {step['p99_in_ms']} ms, "
                f"out p50 {step['p50_out_ms']} p99 {step['p99_out_ms']} ms; lost {step['lost_in']} in, "
                f"{step['lost_out']} out; Daphne {step['daphne_us_per_frame']} µs CPU per frame; "
                f"CPU {_shares(step['cpu'])}; preempted {_preempted(step['cpu'])} times; "
                f"waited for a core {_waits(step['cpu'])} of {step['cpu']['wall']['cpu_s']:.1f} s; "
                f"frames over {HELD_P99_MS:.0f} ms {step['late_in']} in, {step['late_out']} out; "
                f"load {step['load']:.2f} -> {'held' if ok else 'NOT held'}",
                flush=True,
            )
            if ok:
                break
        if not ok:
            break
        held = streams
    last = steps[-1]
    report.add(
        Row(
            "voice",
            f"streams held at real-time pace (p99 lag < {HELD_P99_MS:.0f} ms each way, none lost)",
            f"{held} (next step: {_shares(last['cpu'])})" if held != last["streams"] else f"{held}",
            figures={"streams": held, "steps": steps, "client_processes": processes},
        )  # fmt: skip
    )
    # What one core of Daphne could carry at the CPU each stream cost at the largest step held of at
    # least PROJECTION_MIN_STREAMS (a step that fell behind batches its frames, which makes each cheaper;
    # a few streams wake the loop once per frame, which makes each dearer), else the largest step run: a
    # projection from CPU time, which the machine's other work inflates far less than lag, not a count
    # of streams held.
    candidates = [step for step in steps if _held(step) and step["streams"] >= PROJECTION_MIN_STREAMS]
    busiest = max(candidates or steps, key=lambda step: step["streams"])
    held_or_not = "held" if _held(busiest) else "not held"
    per_stream_s = busiest["daphne_us_per_frame"] * 2 / FRAME_S / 1e6 if busiest["daphne_us_per_frame"] else 0.0
    report.add(
        Row(
            "voice",
            f"Daphne CPU per stream at {busiest['streams']} streams ({held_or_not}) → streams per core (projection)",
            f"{per_stream_s * 100:.1f}% of a core → {1 / per_stream_s:.0f}" if per_stream_s else "",
            figures={"streams": busiest["streams"], "core_share_per_stream": round(per_stream_s, 4)},
        )
    )


def _streams(count: int, processes: int, fake: FakeProcess, daphne: int, url: str, token: str) -> dict[str, Any]:
    frames = int(STREAM_SECONDS / FRAME_S)
    jobs = []
    for call in range(1, count + 1):
        call_sid, stream_url, parameters = _dial(url, token)
        jobs.append({"kind": "phone", "call": call, "url": stream_url, "call_sid": call_sid, "parameters": parameters})
    first = fake.ask("count")
    callers = Callers(jobs, processes, frames, frames)
    try:
        callers.expect("ready")
        if not fake.wait_for(lambda: fake.ask("sessions", first) >= count, 60):
            raise RuntimeError("some streams opened no Realtime session")
        watched = {"daphne": daphne, "fake": fake.process.pid} | {
            f"clients{n + 1}": p.pid for n, p in enumerate(callers.processes)
        }
        cpu, whole = CPU(watched), CPU({"daphne": daphne})
        # Each answer streams at real-time pace, as the caller talks.
        fake.ask("speak", list(range(first, first + count)), STREAM_SECONDS * 1000, False)
        callers.go()
        callers.expect("talked")
        used = cpu.stop()
        fake.wait_for(lambda: sum(len(r["frames"]) for r in fake.ask("arrivals", first)) >= count * frames, 10)
        results = callers.expect("done")
        daphne_cpu = whole.stop()["daphne"]["cpu_s"]
    finally:
        callers.join()
    sent = {(call, index): at for result in results for call, index, at in result["sent"]}
    media = {call: arrivals for result in results for call, arrivals in result["media"].items()}
    lags_in: list[float] = []
    lags_out: list[float] = []
    lost_out = 0
    arrived = 0
    for record in fake.ask("arrivals", first):
        if not record["frames"]:
            continue
        call = record["frames"][0][0]
        arrived += len(record["frames"])
        lags_in += [(at - sent[(c, index)]) * 1000 for c, index, at in record["frames"]]
        got = media.get(call, [])
        lost_out += max(0, frames - len(got))
        lags_out += [(a - s) * 1000 for s, a in zip(record["deltas"], got, strict=False)]
    lost_in = count * frames - arrived
    inf = float("inf")
    fin = latency(lags_in) if lags_in else {"p50_ms": inf, "p99_ms": inf}
    fout = latency(lags_out) if lags_out else {"p50_ms": inf, "p99_ms": inf}
    bridged = arrived + sum(len(m) for m in media.values())
    per_frame = round(daphne_cpu / bridged * 1e6, 1) if bridged else None
    return {
        "streams": count,
        "p50_in_ms": fin["p50_ms"],
        "p99_in_ms": fin["p99_ms"],
        "p50_out_ms": fout["p50_ms"],
        "p99_out_ms": fout["p99_ms"],
        "late_in": sum(lag > HELD_P99_MS for lag in lags_in),
        "late_out": sum(lag > HELD_P99_MS for lag in lags_out),
        "lost_in": lost_in,
        "lost_out": lost_out,
        "cpu": used,
        "daphne_us_per_frame": per_frame,
        "load": os.getloadavg()[0],
    }
