"""Benchmarks: how fast the hot paths are on the real stack. Never run by the tests (tests do not time).

    make bench                                    # every scenario (= .venv/bin/python bench/run.py)
    .venv/bin/python bench/run.py retrieval -n 200

Each run uses a throwaway embedded Postgres and Redis under var/bench/ (or DATABASE_URL / REDIS_URL when
set: point them at a scratch database, the benchmarks write to it and empty its knowledge base). Every
scenario prints its figures as it goes; at the end a table sets each TalIA figure beside its floor (the
same work done the barest way, same run) with the ratio and the load average, and the run is written as
JSON to var/bench/latest.json (or --json PATH).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import Report, Row, ms  # noqa: E402  (after the path is set)
from bench.report import latency as latency_figures  # noqa: E402

REPORT = Report()
# The servers and workers the benchmarks start run as in production, with the connection pool unless
# the caller turned it off; this process (index builds, bulk loads: statements longer than the pool's
# read deadline) connects per use, as manage.py commands do.
_SERVER_DATABASE_POOL = os.environ.get("TALIA_DATABASE_POOL")


def server_env(**extra: str) -> dict[str, str]:
    """This process's environment for a server or worker it starts (see _SERVER_DATABASE_POOL)."""
    env = {**os.environ, **extra}
    env.pop("TALIA_DATABASE_POOL", None)
    if _SERVER_DATABASE_POOL is not None:
        env["TALIA_DATABASE_POOL"] = _SERVER_DATABASE_POOL
    return env


def timed(label: str, runs: int, action: Callable[[int], object], scenario: str = "") -> list[float]:
    """Run `action(i)` `runs` times, print the latency distribution and add it to the report."""
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(
        f"{label:<44} n={runs:<5} p50={statistics.median(samples):7.2f} ms  p95={p95:7.2f} ms  "
        f"max={samples[-1]:7.2f} ms"
    )
    if scenario:
        figures = latency_figures(samples)
        REPORT.rows.append(Row(scenario, label, ms(figures), figures=dict(figures)))
    return samples


def bench_inbox(runs: int) -> None:
    """A visitor's message stored (contact, conversation, message, pending run) and answered offline."""
    from conversations import inbox
    from conversations.assistant import turns

    run = f"{int(time.time())}"  # fresh visitors on every run
    timed(
        "inbox.receive (new visitor)",
        runs,
        lambda i: inbox.receive("web", f"bench-{run}-new-{i:06d}", "Hola"),
        "inbox",
    )
    timed(
        "inbox.receive (same conversation)",
        runs,
        lambda i: inbox.receive("web", f"bench-{run}-one", f"m{i}"),
        "inbox",
    )

    def turn(i: int) -> None:
        received = inbox.receive("web", f"bench-{run}-turn-{i:06d}", "¿Cuánto cuesta una limpieza?")
        turns.run_turn(received.message.pk)

    timed("receive + offline assistant turn", runs, turn, "inbox")


def percentiles(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return f"p50={statistics.median(samples):7.2f} ms  p95={p95:7.2f} ms  max={samples[-1]:7.2f} ms"


def rss_kib(pid: int) -> int:
    """Resident memory of a process (Linux /proc), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def start_daphne(log_path: Path, app: str = "talia.asgi:application") -> tuple[subprocess.Popen[bytes], str]:
    """One Daphne process on this benchmark's database and Redis, as `make run` starts it."""
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Every benchmark socket comes from 127.0.0.1: lift the per-IP socket cap and rate limits for it.
    env = server_env(
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        TALIA_WS_MAX_PER_IP="100000",
        TALIA_WEBCHAT_RATE_PER_IP="100000/min",
    )
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "talia.runtime.web", "-b", "127.0.0.1", "-p", str(port), app],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)  # noqa: S310  (our own http:// URL)
            return process, url
        except urllib.error.HTTPError:
            return process, url  # answering, if not all green (no worker runs here)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"daphne did not start; see {log_path}")


def bench_sockets(runs: int) -> None:
    """Idle visitor sockets one Daphne process holds (and its memory per socket), then the latency from
    group_send to a frame's arrival at 200 live sockets: one push to a group of all 200, and 200 pushes
    to one socket each. Sockets are real (aiohttp over TCP); the pushes go through the Redis layer."""
    import asyncio
    import uuid

    from channels.layers import get_channel_layer
    from django.conf import settings

    from channels_web.models import WebchatSession
    from talia.redis_client import get_redis
    from talia.testing.sockets import LiveSocket, SocketPool

    total = int(os.environ.get("BENCH_IDLE_SOCKETS", "1000"))
    idle_s = float(os.environ.get("BENCH_IDLE_S", "60"))
    fanout = 200
    run = f"{int(time.time())}"
    log_path = Path(os.environ["TALIA_VAR_DIR"]) / f"daphne-bench-{run}.log"
    process, url = start_daphne(log_path)
    layer = get_channel_layer()
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]

    def contact_groups(sockets: list[LiveSocket]) -> list[str]:
        by_session = dict(
            WebchatSession.objects.filter(session_id__startswith=f"bench-{run}-").values_list(
                "session_id", "contact_id"
            )
        )
        return [f"contact.{by_session[socket.name]}" for socket in sockets]

    def push(text: str) -> dict[str, object]:
        payload = {"id": str(uuid.uuid4()), "conversation_id": "bench", "seq": 0, "sender": "system", "text": text}
        return {"type": "message.new", "conversation_id": "bench", "message": payload}

    async def arrivals(sockets: list[LiveSocket], ids: list[str], timeout: float = 30) -> list[float | None]:
        """When each socket got its message (the reader stamps arrivals; this only waits for them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(i in s.message_arrivals for s, i in zip(sockets, ids, strict=True)):
                break
            await asyncio.sleep(0.005)
        return [s.message_arrivals.get(i) for s, i in zip(sockets, ids, strict=True)]

    async def open_many(pool: SocketPool, start: int, count: int) -> list[LiveSocket]:
        gate = asyncio.Semaphore(50)

        async def one(i: int) -> LiveSocket:
            async with gate:
                name = f"bench-{run}-{i:06d}"
                return await pool.open_ready(name, f"/ws/webchat/?session_id={name}", timeout=60)

        return list(await asyncio.gather(*(one(i) for i in range(start, start + count))))

    async def idle() -> None:
        async with SocketPool(url) as pool:
            await asyncio.sleep(2)
            base = rss_kib(process.pid)
            print(f"{'daphne RSS with no sockets':<44} {base / 1024:7.1f} MiB")
            sockets: list[LiveSocket] = []
            step = max(1, total // 4)
            while len(sockets) < total:
                sockets += await open_many(pool, len(sockets), min(step, total - len(sockets)))
                grown = rss_kib(process.pid) - base
                print(
                    f"{f'{len(sockets)} idle sockets open':<44} RSS +{grown / 1024:6.1f} MiB = "
                    f"{grown / len(sockets):6.1f} KiB per socket"
                )
            await asyncio.sleep(idle_s)
            alive = [socket for socket in sockets if not socket.closed]
            groups = await asyncio.to_thread(contact_groups, alive)
            pushes = [push("still there?") for _ in alive]
            for group, event in zip(groups, pushes, strict=True):
                await layer.group_send(group, event)
            got = await arrivals(alive, [e["message"]["id"] for e in pushes])  # type: ignore[index]
            delivered = sum(1 for t in got if t is not None)
            print(f"{f'after {idle_s:.0f} s idle':<44} {len(alive)}/{total} open, {delivered}/{total} got a push")

    async def latency() -> None:
        async with SocketPool(url) as pool:
            sockets = await open_many(pool, total, fanout)
            groups = await asyncio.to_thread(contact_groups, sockets)
            redis = get_redis()
            broadcast = f"bench-fanout-{run}"
            for group in groups:
                for channel in redis.zrange(f"{prefix}:group:{group}", 0, -1):
                    await layer.group_add(broadcast, channel.decode() if isinstance(channel, bytes) else str(channel))
            samples: list[float] = []
            last: list[float] = []
            for _ in range(runs):
                event = push("fan-out")
                start = time.perf_counter()
                await layer.group_send(broadcast, event)
                got = await arrivals(sockets, [event["message"]["id"]] * fanout)  # type: ignore[index]
                times = [(t - start) * 1000 for t in got if t is not None]
                samples += times
                last.append(max(times))
                if len(times) < fanout:
                    print(f"  lost: {fanout - len(times)} of {fanout}")
            print(f"{f'one push to a group of {fanout} sockets':<44} n={len(samples):<5} {percentiles(samples)}")
            REPORT.rows.append(
                Row(
                    "sockets",
                    f"one push to a group of {fanout} sockets",
                    ms(latency_figures(samples)),
                    figures=latency_figures(samples),
                )
            )
            print(f"{f'  ... until the last of the {fanout} has it':<44} n={len(last):<5} {percentiles(last)}")
            singles: list[float] = []
            for _ in range(max(1, runs // 10)):
                sent = []
                for socket, group in zip(sockets, groups, strict=True):
                    event = push("single")
                    sent.append((socket, event["message"]["id"], time.perf_counter()))  # type: ignore[index]
                    await layer.group_send(group, event)
                got = await arrivals([socket for socket, _, _ in sent], [message_id for _, message_id, _ in sent])
                singles += [(t - start) * 1000 for (_, _, start), t in zip(sent, got, strict=True) if t is not None]
            print(f"{f'{fanout} pushes, one per socket':<44} n={len(singles):<5} {percentiles(singles)}")
            REPORT.rows.append(
                Row(
                    "sockets",
                    f"{fanout} pushes, one per socket",
                    ms(latency_figures(singles)),
                    figures=latency_figures(singles),
                )
            )

    try:
        asyncio.run(idle())
        asyncio.run(latency())
    finally:
        process.terminate()
        process.wait(10)
    bench_sockets_against_floor(runs, run)
    trouble = [
        line for line in log_path.read_text(errors="replace").splitlines() if "Traceback" in line or "1011" in line
    ]
    print(f"{'daphne log: tracebacks or 1011':<44} {len(trouble)}")


def bench_sockets_against_floor(runs: int, run: str) -> None:
    """TalIA's visitor socket beside a bare consumer (bench/bare_asgi.py) on a fresh Daphne each, same run.

    - connect 200 sockets at once (open, ping, pong: the consumer has joined its groups): first-time
      visitors (contact and session created), then the same visitors again; floor: the bare consumer;
    - typing relay: a frame on a socket until it reaches a listener in the conversation's group; floor:
      the bare consumer's group_send of the frame;
    - agent message -> visitor, with 200 live sockets: from the agent's send (console.actions.do_send:
      stored, committed, published) until the visitor's socket has it; floor: group_send -> socket;
    - burst: 200 sockets send a message at the same moment, until each has its own message pushed back;
      floor: 200 bare sockets each relaying a frame to their group and back.
    """
    import asyncio

    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer
    from django.contrib.auth.models import Group, User

    from channels_web import services
    from conversations import state
    from conversations.console import actions
    from conversations.models import Conversation
    from talia.testing.sockets import LiveSocket, SocketPool

    count = 200
    runs = max(runs, 400)  # latency samples: enough for a p99
    var = Path(os.environ["TALIA_VAR_DIR"])

    def name(i: int) -> str:
        return f"bench-{run}-s{i:04d}"

    async def connect_all(url: str, path_of: Callable[[int], str]) -> tuple[list[float], float, list[LiveSocket]]:
        pool = SocketPool(url)
        await pool.__aenter__()

        async def one(i: int) -> tuple[float, LiveSocket]:
            start = time.perf_counter()
            socket = await pool.open_ready(f"s{i}", path_of(i), timeout=60)
            return (time.perf_counter() - start) * 1000, socket

        start = time.perf_counter()
        done = await asyncio.gather(*(one(i) for i in range(count)))
        wall = (time.perf_counter() - start) * 1000
        sockets = [socket for _, socket in done]
        sockets_pools[id(sockets)] = pool
        return [latency for latency, _ in done], wall, sockets

    sockets_pools: dict[int, SocketPool] = {}

    async def close_all(sockets: list[LiveSocket]) -> None:
        await sockets_pools.pop(id(sockets)).__aexit__(None, None, None)

    def connect_row(work: str, talia: tuple[list[float], float], floor: tuple[list[float], float]) -> None:
        (samples, wall), (floor_samples, floor_wall) = talia, floor
        t, f = latency_figures(samples), latency_figures(floor_samples)
        REPORT.add(
            Row(
                "sockets",
                work,
                f"all in {wall:.0f} ms ({ms(t)})",
                f"bare consumer: all in {floor_wall:.0f} ms ({ms(f)})",
                wall / floor_wall,
                {"talia_wall_ms": round(wall, 1), "floor_wall_ms": round(floor_wall, 1), "talia": t, "floor": f},
            )
        )

    def latency_row(work: str, samples: list[float], floor_samples: list[float], floor_label: str) -> None:
        t, f = latency_figures(samples), latency_figures(floor_samples)
        # The ratio of the medians: a p99 of a few hundred samples on a shared machine is mostly noise.
        REPORT.add(
            Row("sockets", work, ms(t), f"{floor_label}: {ms(f)}", t["p50_ms"] / f["p50_ms"], {"talia": t, "floor": f})
        )

    async def typing_latencies(
        sockets: list[LiveSocket], groups: list[str], frame: Callable[[int], dict]
    ) -> list[float]:
        """Sequential: a typing frame on socket i until a listener in groups[i] receives it."""
        layer = get_channel_layer()
        listener = await layer.new_channel()
        samples = []
        for n in range(runs):
            i = n % len(sockets)
            await layer.group_add(groups[i], listener)
            start = time.perf_counter()
            await sockets[i].send(frame(n))
            while (await asyncio.wait_for(layer.receive(listener), 10)).get("type") != "typing":
                pass
            samples.append((time.perf_counter() - start) * 1000)
            await layer.group_discard(groups[i], listener)
        return samples

    async def burst(
        sockets: list[LiveSocket], frame: Callable[[int], dict], mine: Callable[[int], Callable[[dict], bool]]
    ) -> tuple[float, int, int]:
        """All send at once; ms until the last has its own push back, pushes missing, error frames."""
        await asyncio.sleep(1)
        seen = [len(socket.frames) for socket in sockets]
        start = time.perf_counter()
        await asyncio.gather(*(socket.send(frame(i)) for i, socket in enumerate(sockets)))
        await asyncio.gather(*(socket.wait_for(mine(i), 60) for i, socket in enumerate(sockets)))
        last, missing = start, 0
        for i, socket in enumerate(sockets):
            hits = [at for f, at in zip(socket.frames, socket.arrivals, strict=False) if mine(i)(f)]
            if hits:
                last = max(last, hits[0])
            else:
                missing += 1
        errors = [
            f for socket, n in zip(sockets, seen, strict=True) for f in socket.frames[n:] if f.get("type") == "error"
        ]
        for code in sorted({f["error"]["code"] for f in errors}):
            print(
                f"  burst: {sum(1 for f in errors if f['error']['code'] == code)} error frames {code!r}, e.g. {errors[0]}"
            )
        return (last - start) * 1000, missing, len(errors)

    def prepare_agent_conversations() -> tuple[User, list[Conversation]]:
        agent = User.objects.create_user(f"bench-agent-{run}")
        agent.groups.add(Group.objects.get_or_create(name="agents")[0])
        conversations = []
        for i in range(count):
            conversation = services.post_message(services.Visitor(session_id=name(i)), "Hola").conversation
            state.request_handoff(conversation, requested_by="contact")
            conversations.append(actions.do_claim(agent, Conversation.objects.get(pk=conversation.pk)))
        return agent, conversations

    # --- The floor: the bare consumer ----------------------------------------------------------------
    bare_log = var / f"daphne-bench-bare-{run}.log"
    process, url = start_daphne(bare_log, "bench.bare_asgi:application")
    try:
        layer = get_channel_layer()

        async def floor() -> dict[str, object]:
            results: dict[str, object] = {}
            samples, wall, sockets = await connect_all(url, lambda i: f"/ws/bare/?name=b{run}{i}")
            results["connect"] = (samples, wall)
            results["typing"] = await typing_latencies(
                sockets, [f"bare.b{run}{i}" for i in range(count)], lambda n: {"type": "typing", "active": n % 2 == 0}
            )
            pushes: list[float] = []
            for n in range(runs):
                i = n % count
                message_id = f"floor-{n}"
                start = time.perf_counter()
                await layer.group_send(f"bare.b{run}{i}", {"type": "message.new", "message": {"id": message_id}})
                while message_id not in sockets[i].message_arrivals:
                    await asyncio.sleep(0.0005)
                pushes.append((sockets[i].message_arrivals[message_id] - start) * 1000)
            results["push"] = pushes
            results["burst"] = await burst(
                sockets,
                lambda i: {"type": "message.new", "message": {"id": f"burst-{i}", "text": f"burst {i}"}},
                lambda i: lambda f: f.get("type") == "message.new" and f["message"].get("text") == f"burst {i}",
            )
            await close_all(sockets)
            return results

        floor_results = asyncio.run(floor())
    finally:
        process.terminate()
        process.wait(10)

    # --- TalIA's visitor socket -----------------------------------------------------------------------
    talia_log = var / f"daphne-bench-visitors-{run}.log"
    process, url = start_daphne(talia_log)
    try:

        async def talia() -> dict[str, object]:
            results: dict[str, object] = {}
            samples, wall, sockets = await connect_all(url, lambda i: f"/ws/webchat/?session_id={name(i)}")
            results["connect_new"] = (samples, wall)
            await close_all(sockets)
            agent, conversations = await sync_to_async(prepare_agent_conversations)()
            await asyncio.sleep(1)
            samples, wall, sockets = await connect_all(url, lambda i: f"/ws/webchat/?session_id={name(i)}")
            results["connect_known"] = (samples, wall)
            results["typing"] = await typing_latencies(
                sockets, [c.group_name for c in conversations], lambda n: {"type": "typing", "active": n % 2 == 0}
            )
            pushes: list[float] = []
            for n in range(runs):
                i = n % count
                start = time.perf_counter()
                message = await asyncio.to_thread(actions.do_send, agent, conversations[i], f"agent {n}")
                message_id = str(message.pk)
                deadline = time.monotonic() + 10
                while message_id not in sockets[i].message_arrivals and time.monotonic() < deadline:
                    await asyncio.sleep(0.0005)
                if message_id in sockets[i].message_arrivals:
                    pushes.append((sockets[i].message_arrivals[message_id] - start) * 1000)
            results["push"] = pushes
            results["push_lost"] = runs - len(pushes)
            results["burst"] = await burst(
                sockets,
                lambda i: {
                    "type": "message",
                    "content": f"burst {run} {i}",
                    "client_message_id": f"bench-burst-{i:04d}",
                },
                lambda i: lambda f: f.get("type") == "message.new" and f["message"].get("text") == f"burst {run} {i}",
            )
            results["closed"] = sum(1 for socket in sockets if socket.closed)
            await close_all(sockets)
            return results

        talia_results = asyncio.run(talia())
    finally:
        process.terminate()
        process.wait(10)

    floor_connect = floor_results["connect"]
    connect_row(f"connect {count} sockets at once, first-time visitors", talia_results["connect_new"], floor_connect)  # type: ignore[arg-type]
    connect_row(f"connect {count} sockets at once, returning visitors", talia_results["connect_known"], floor_connect)  # type: ignore[arg-type]
    latency_row(
        "typing relay (socket -> group listener)", talia_results["typing"], floor_results["typing"], "bare relay"
    )  # type: ignore[arg-type]
    latency_row(
        f"agent message -> visitor, {count} live sockets (lost: {talia_results['push_lost']})",
        talia_results["push"],  # type: ignore[arg-type]
        floor_results["push"],  # type: ignore[arg-type]
        "group_send -> socket",
    )
    (t_ms, t_missing, t_errors), (f_ms, f_missing, _) = talia_results["burst"], floor_results["burst"]  # type: ignore[misc]
    REPORT.add(
        Row(
            "sockets",
            f"burst: {count} sockets send at once, each pushed back",
            f"{t_ms:.0f} ms, {count * 1000 / t_ms:.0f} msg/s, {t_missing} missing, {t_errors} errors, "
            f"{talia_results['closed']} closed",
            f"bare relay: {f_ms:.0f} ms, {count * 1000 / f_ms:.0f} msg/s, {f_missing} missing",
            t_ms / f_ms,
            {"talia_ms": t_ms, "missing": t_missing, "errors": t_errors, "floor_ms": f_ms, "floor_missing": f_missing},
        )
    )
    for log in (bare_log, talia_log):
        trouble = [
            line for line in log.read_text(errors="replace").splitlines() if "Traceback" in line or "1011" in line
        ]
        print(f"{log.name + ': tracebacks or 1011':<44} {len(trouble)}")


def bench_whatsapp(runs: int) -> None:
    """Twilio's webhook over HTTP to one Daphne process: acknowledgement latency and messages/s.

    Each POST is signed as Twilio signs it and stores one message (a new MessageSid); the turns it queues
    are not run here (no worker), so this times the door alone: signature, inbox.receive, TwiML answer.
    """
    import secrets
    import urllib.parse
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from twilio.request_validator import RequestValidator

    token = secrets.token_hex(16)
    os.environ["TALIA_TWILIO_AUTH_TOKEN"] = token  # read by the Daphne started below
    validator = RequestValidator(token)
    log_path = Path(os.environ["TALIA_VAR_DIR"]) / "bench-whatsapp-daphne.log"
    process, url = start_daphne(log_path)
    webhook = f"{url}/api/v1/whatsapp/webhook"
    stamp = f"{int(time.time()) % 100000:05d}"

    def post(i: int, wa_id: str) -> float:
        message_sid = "SM" + secrets.token_hex(16)
        params = {
            "MessageSid": message_sid,
            "SmsMessageSid": message_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": f"whatsapp:+{wa_id}",
            "To": "whatsapp:+14155238886",
            "WaId": wa_id,
            "ProfileName": "Bench",
            "Body": f"Hola, mensaje {i}",
            "NumMedia": "0",
        }
        request = urllib.request.Request(  # noqa: S310  (our own http:// URL)
            webhook,
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": validator.compute_signature(webhook, params)},
        )
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()
            if response.status != 200:
                raise RuntimeError(f"webhook answered {response.status}")
        return (time.perf_counter() - start) * 1000

    try:
        for label, number in (("new contact per message", lambda i: f"3460{stamp}{i:04d}"),
                              ("one contact, one conversation", lambda i: f"3461{stamp}0000")):  # fmt: skip
            post(0, number(runs))  # warm up (and open the one conversation)
            samples = sorted(post(i, number(i)) for i in range(runs))
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
            print(f"{'webhook ack, ' + label:<44} n={runs:<5} {percentiles(samples)}  p99={p99:7.2f} ms")
        total = runs * 4
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda i: post(i, f"3462{stamp}{i % 50:04d}"), range(total)))
        elapsed = time.perf_counter() - start
        print(f"{'webhooks, 8 at a time, 50 contacts':<44} n={total:<5} {total / elapsed:7.1f} messages/s")
    finally:
        process.terminate()
        process.wait(10)


def bench_messages(runs: int) -> None:
    from bench.message_path import bench_message_path

    bench_message_path(runs, REPORT, start_daphne, server_env)


def bench_retrieval(runs: int) -> None:
    from bench.knowledge import bench_retrieval as run

    run(runs, REPORT)


def bench_ingest(runs: int) -> None:
    from bench.knowledge import bench_ingest as run

    run(runs, REPORT)


def bench_quality(runs: int) -> None:
    from bench.knowledge import bench_quality as run

    run(runs, REPORT)


def bench_voice(runs: int) -> None:
    from bench.voice import bench_voice as run

    run(runs, REPORT)


def bench_events(runs: int) -> None:
    from bench.events import bench_events as run

    run(runs, REPORT)


BENCHMARKS = {
    "inbox": bench_inbox,
    "messages": bench_messages,
    "retrieval": bench_retrieval,
    "quality": bench_quality,
    "ingest": bench_ingest,
    "sockets": bench_sockets,
    "whatsapp": bench_whatsapp,
    "voice": bench_voice,
    "events": bench_events,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], help="which benchmarks (default: all)")
    parser.add_argument("-n", "--runs", type=int, default=100, help="iterations per measurement")
    parser.add_argument("--json", type=Path, help="where to write the results (default: var/bench/latest.json)")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "talia.settings")
    os.environ.setdefault("TALIA_VAR_DIR", str(ROOT / "var" / "bench"))
    os.environ.setdefault("TALIA_LLM_ENGINE", "offline")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    os.environ["TALIA_DATABASE_POOL"] = "false"  # this process only: see _SERVER_DATABASE_POOL
    from talia.runtime.embedded import bootstrap

    bootstrap()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    failed = []
    for name in args.names or list(BENCHMARKS):
        print(f"== {name} (load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})", flush=True)
        try:
            BENCHMARKS[name](args.runs)
        except Exception:  # one broken scenario must not cost the figures of the others
            traceback.print_exc()
            failed.append(name)
            REPORT.rows.append(Row(name, "FAILED (see the traceback above)", ""))
    print()
    print(REPORT.table())
    path = args.json or Path(os.environ["TALIA_VAR_DIR"]) / "latest.json"
    REPORT.write(path)
    print(f"\nwritten to {path}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
