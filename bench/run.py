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


def start_daphne(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """One Daphne process on this benchmark's database and Redis, as `make run` starts it."""
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Every benchmark socket comes from 127.0.0.1: lift the per-IP socket cap and rate limits for it.
    env = {
        **os.environ,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
        "TALIA_WS_MAX_PER_IP": "100000",
        "TALIA_WEBCHAT_RATE_PER_IP": "100000/min",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "talia.runtime.web", "-b", "127.0.0.1", "-p", str(port), "talia.asgi:application"],
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
    trouble = [
        line for line in log_path.read_text(errors="replace").splitlines() if "Traceback" in line or "1011" in line
    ]
    print(f"{'daphne log: tracebacks or 1011':<44} {len(trouble)}")


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


def bench_retrieval(runs: int) -> None:
    from bench.knowledge import bench_retrieval as run

    run(runs, REPORT)


def bench_ingest(runs: int) -> None:
    from bench.knowledge import bench_ingest as run

    run(runs, REPORT)


BENCHMARKS = {
    "inbox": bench_inbox,
    "retrieval": bench_retrieval,
    "ingest": bench_ingest,
    "sockets": bench_sockets,
    "whatsapp": bench_whatsapp,
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
