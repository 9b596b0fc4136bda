"""The message path over HTTP: a visitor's POST /api/webchat/messages answered with the offline reply.

One Daphne process (`talia.runtime.web`) and one Celery worker (`celery -A talia worker`, prefork,
`BENCH_WORKER_CONCURRENCY` children, default 2) as production runs them; the clients are threads of
this process with one keep-alive HTTP connection each, every client its own visitor (session), `-n`
messages per client at concurrency 1 and 10 (and 50 with `-n` ≥ 20: `-n / 5` each). A message's time is
from the POST to its 200 with the assistant's reply in the body (a 202, the reply not within
TALIA_REPLY_WAIT_S, counts as an error).

Floors, same run, same machine: a second Daphne serving `bench/bare_asgi.py`, whose `/floor/insert`
does one INSERT through Django's connection and `/floor/hop` the INSERT plus one Celery round trip
(`bench/floor_tasks.py`, its own prefork worker with as many children), at the same concurrencies.

CPU per message: the CPU time (user + system, from /proc through psutil) of the Daphne process, the
worker (main process and children) and Postgres (the postmaster, its live backends and those that
exited) over the concurrency-10 run, divided by its messages. Redis and the clients are not counted.

The servers and workers run with DEBUG off, as deployed (the benchmark's embedded servers would otherwise
turn it on, as for a development checkout: Django then records every SQL statement through its debug
cursor, about a tenth of the worker's CPU), with this run's SECRET_KEY and the static files served without
the collected manifest (no page is rendered here). `BENCH_DEBUG=true` runs them with DEBUG on, as the
figures before 30 November 2026 (round 2) were measured.

Profiles: with `BENCH_PY_SPY=<path to py-spy>` the concurrency-10 run is also sampled by py-spy (Daphne,
and the worker with its children), as collapsed stacks in `var/bench/profile-*.txt` (e.g. for
flamegraph.pl, or `sort | uniq`-style summaries). py-spy is not a dependency: install it anywhere.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench.report import Report, Row, latency

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int, *, with_children: bool) -> float:
    """CPU of a process, plus its live children's and (through its own counters) its reaped ones'."""
    process = psutil.Process(pid)
    times = process.cpu_times()
    total = times.user + times.system
    if with_children:
        total += times.children_user + times.children_system
        for child in process.children(recursive=True):
            with_times = child.cpu_times()
            total += with_times.user + with_times.system
    return total


def postmaster_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        data_directory = cursor.fetchone()[0]
    return int((Path(data_directory) / "postmaster.pid").read_text().split()[0])


def start_profilers(pids: dict[str, int], directory: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy recorders (BENCH_PY_SPY, see the module docstring) for each named process; [] without it."""
    py_spy = os.environ.get("BENCH_PY_SPY")
    if not py_spy:
        return []
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--nonblocking",
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(directory / f"profile-{name}.txt"),
                *os.environ.get("BENCH_PY_SPY_ARGS", "").split(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for name, pid in pids.items()
    ]


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for profiler in profilers:
        profiler.wait(30)


def start_worker(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def wait_for_worker(what: str, ready: Callable[[], bool], log_path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited; see {log_path}")
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready; see {log_path}")


class Client:
    """One visitor: a keep-alive HTTP connection and its own session id."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.session = "bench-" + secrets.token_hex(8)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        self.connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        return response.status, response.read()


def talia_message(client: Client, i: int) -> None:
    status, body = client.post(
        "/api/webchat/messages",
        {
            "session_id": client.session,
            "author": "user",
            "content": f"¿Cuánto cuesta una limpieza? {i}",
            "locale": "es",
        },
    )
    if status != 200 or not json.loads(body).get("reply"):
        raise RuntimeError(f"message path answered {status}: {body[:200]!r}")


def floor_request(path: str) -> Callable[[Client, int], None]:
    def send(client: Client, i: int) -> None:
        status, body = client.post(path, {"body": "Hola"})
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {body[:200]!r}")

    return send


def drive(
    url: str,
    send: Callable[[Client, int], None],
    concurrency: int,
    per_client: int,
    on_start: Callable[[], None] = lambda: None,
) -> tuple[list[float], float]:
    """Latencies (ms) of every message and the wall time of the whole run, `concurrency` clients at once.

    Each client first sends one untimed message (its connection, visitor and conversation created);
    `on_start` runs after those, just before the timed messages start.
    """
    clients = [Client(url) for _ in range(concurrency)]
    for client in clients:  # warm up: connection open, visitor and conversation created
        send(client, -1)
    samples: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start_line = threading.Barrier(concurrency + 1)

    def run(client: Client) -> None:
        start_line.wait()
        mine = []
        try:
            for i in range(per_client):
                started = time.perf_counter()
                send(client, i)
                mine.append((time.perf_counter() - started) * 1000)
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    on_start()
    start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for client in clients:
        client.connection.close()
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed; first: {errors[0]!r}")
    return samples, elapsed


def bench_message_path(
    runs: int,
    report: Report,
    start_daphne: Callable[[Path, str], tuple[subprocess.Popen[bytes], str]],
    server_env: Callable[..., dict[str, str]],
) -> None:
    """The scenario (module docstring); bench/run.py's own helpers are passed in, as it runs as a script."""
    from django.conf import settings

    var = Path(os.environ["TALIA_VAR_DIR"])
    deployed = {
        "DEBUG": os.environ.get("BENCH_DEBUG", "false"),
        "SECRET_KEY": settings.SECRET_KEY,
        "TALIA_STATIC_MANIFEST": "false",
    }
    saved = {name: os.environ.get(name) for name in deployed}
    os.environ.update(deployed)  # read by server_env for the processes started below, restored after
    try:
        _bench(runs, report, start_daphne, server_env, var)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _bench(
    runs: int,
    report: Report,
    start_daphne: Callable[[Path, str], tuple[subprocess.Popen[bytes], str]],
    server_env: Callable[..., dict[str, str]],
    var: Path,
) -> None:
    from django.conf import settings
    from django.db import connection

    from talia.celery import workers_key
    from talia.redis_client import get_redis

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, body text NOT NULL)")
    os.environ["BENCH_FLOOR_BROKER_URL"] = settings.CELERY_BROKER_URL
    os.environ["BENCH_FLOOR_REDIS_URL"] = settings.REDIS_URL
    concurrency = os.environ.get("BENCH_WORKER_CONCURRENCY", "2")
    env = server_env(PYTHONUNBUFFERED="1")
    processes: list[subprocess.Popen[bytes]] = []
    talia_hostname = f"bench-turns-{secrets.token_hex(3)}@{socket.gethostname()}"
    try:
        talia_worker_log = var / "bench-message-worker.log"
        talia_worker = start_worker(
            ["-A", "talia", "worker", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--pool=prefork",
             f"--concurrency={concurrency}", "--loglevel=WARNING", "--without-mingle", "--without-gossip",
             f"--hostname={talia_hostname}"],
            env, talia_worker_log,
        )  # fmt: skip
        processes.append(talia_worker)
        floor_worker_log = var / "bench-floor-worker.log"
        floor_worker = start_worker(
            ["-A", "bench.floor_tasks", "worker", "-Q", "bench-floor", "--pool=prefork",
             f"--concurrency={concurrency}", "--loglevel=INFO", "--without-mingle", "--without-gossip",
             f"--hostname=bench-floor-{secrets.token_hex(3)}@%h"],
            env, floor_worker_log,
        )  # fmt: skip
        processes.append(floor_worker)
        talia_daphne, talia_url = start_daphne(var / "bench-message-daphne.log", "talia.asgi:application")
        processes.append(talia_daphne)
        floor_daphne, floor_url = start_daphne(var / "bench-floor-daphne.log", "bench.bare_asgi:application")
        processes.append(floor_daphne)
        wait_for_worker(
            "TalIA's worker",
            lambda: get_redis().zscore(workers_key(), talia_hostname) is not None,  # its heartbeat
            talia_worker_log,
            talia_worker,
        )
        wait_for_worker(
            "the floor's worker", lambda: b"ready." in floor_worker_log.read_bytes(), floor_worker_log, floor_worker
        )
        postgres = postmaster_pid()

        levels = [(1, runs), (10, runs)]
        if runs >= 20:
            levels.append((50, max(1, runs // 5)))
        for level, per_client in levels:
            floors = {}
            for label, path in (("INSERT", "/floor/insert"), ("INSERT + Celery hop", "/floor/hop")):
                samples, elapsed = drive(floor_url, floor_request(path), level, per_client)
                floors[label] = (latency(samples), len(samples) / elapsed)
            before: dict[str, float] = {}

            def measure_from_here(before: dict[str, float] = before) -> None:
                before["daphne"] = cpu_seconds(talia_daphne.pid, with_children=False)
                before["worker"] = cpu_seconds(talia_worker.pid, with_children=True)
                before["postgres"] = cpu_seconds(postgres, with_children=True)

            profilers = (
                start_profilers({"daphne": talia_daphne.pid, "worker": talia_worker.pid}, var) if level == 10 else []
            )
            try:
                samples, elapsed = drive(talia_url, talia_message, level, per_client, measure_from_here)
            finally:
                stop_profilers(profilers)
            cpu = {
                "daphne": cpu_seconds(talia_daphne.pid, with_children=False) - before["daphne"],
                "worker": cpu_seconds(talia_worker.pid, with_children=True) - before["worker"],
                "postgres": cpu_seconds(postgres, with_children=True) - before["postgres"],
            }
            figures = latency(samples)
            rate = len(samples) / elapsed
            insert, insert_rate = floors["INSERT"]
            hop, hop_rate = floors["INSERT + Celery hop"]
            per_message = {name: round(seconds * 1000 / len(samples), 2) for name, seconds in cpu.items()}
            report.add(
                Row(
                    "messages",
                    f"POST message → reply, concurrency {level}",
                    f"p50 {figures['p50_ms']:.1f} ms, {rate:.1f} msg/s",
                    f"INSERT p50 {insert['p50_ms']:.2f} ms ({insert_rate:.0f}/s); "
                    f"INSERT + hop p50 {hop['p50_ms']:.2f} ms ({hop_rate:.0f}/s)",
                    ratio=figures["p50_ms"] / hop["p50_ms"],
                    figures={
                        "talia": figures, "talia_per_s": round(rate, 1), "insert": insert,
                        "insert_per_s": round(insert_rate, 1), "hop": hop, "hop_per_s": round(hop_rate, 1),
                        "cpu_ms_per_message": per_message,
                    },
                )
            )  # fmt: skip
            total = sum(per_message.values())
            print(
                f"  CPU per message at concurrency {level}: {total:.1f} ms "
                f"(Daphne {per_message['daphne']}, worker {per_message['worker']}, Postgres {per_message['postgres']})"
            )
            if level == 10:
                report.add(
                    Row(
                        "messages",
                        "CPU per message (Daphne + worker + Postgres), concurrency 10",
                        f"{total:.1f} ms (Daphne {per_message['daphne']:.1f}, worker {per_message['worker']:.1f}, "
                        f"Postgres {per_message['postgres']:.1f})",
                        figures={"cpu_ms_per_message": per_message},
                    )
                )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
