"""The development runtime end to end: `manage.py` and `python -m talia.runtime` with embedded servers.

Each test runs the real commands as child processes in a clean environment: no DATABASE_URL or
REDIS_URL, and a var directory of its own under tmp_path. So every child starts (or joins) an embedded
Postgres with pgvector and an embedded Redis exactly as on a developer's machine, and must stop them
when the last user leaves. The servers' lifetimes are checked from the outside: the pid in Postgres's
postmaster.pid and a PING over the Redis socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
import redis

from talia.env import BASE_DIR

# Every test starts servers from scratch (initdb included) and the supervisor test runs the whole stack.
pytestmark = pytest.mark.timeout(300)

T = TypeVar("T")

# What would point a child at the test session's own servers or settings instead of embedded ones.
INHERITED_SETTINGS = ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "DEBUG", "SECRET_KEY", "TALIA_LOG_DIR")
COMMAND_TIMEOUT_S = 90
ALL_HEALTHY = {"status": "ok", "database": "ok", "redis": "ok", "worker": "ok"}

PROBE = """
from django.conf import settings
from django.core.cache import cache
from django.db import connection

with connection.cursor() as cursor:
    cursor.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'")
    print("extension:", cursor.fetchone()[0])
print("postgres socket dir:", connection.settings_dict["HOST"])
cache.set("talia-runtime-test", "pong", 60)
print("cache:", cache.get("talia-runtime-test"))
print("redis url:", settings.REDIS_URL)
"""

HOLD = "import sys; print('ready', flush=True); sys.stdin.read()"

QUERY = """
from django.db import connection

with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
    print("ok" if cursor.fetchone() == (1,) else "unexpected row")
"""


# --- Helpers ---------------------------------------------------------------------------------------


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment minus the test session's servers and settings, with a var dir of its own."""
    env = {name: value for name, value in os.environ.items() if name not in INHERITED_SETTINGS}
    env["TALIA_VAR_DIR"] = str(tmp_path / "var")
    env.update(extra)
    return env


def manage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `manage.py ARGS` to completion (bounded) in a clean environment."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit status {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def poll(predicate: Callable[[], T | None], *, timeout: float, interval: float = 0.25) -> T | None:
    """The first truthy value of `predicate()`, or None once `timeout` seconds have passed.

    A bound on how long to wait for another process, not a measure of its speed.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, or None when there is no such file."""
    try:
        first_line = path.read_text().splitlines()[0]
    except (FileNotFoundError, IndexError):
        return None
    return int(first_line.strip())


def postmaster_pid(var: Path) -> int | None:
    return read_pid(var / "postgres" / "postmaster.pid")


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def alive_process(process: psutil.Process) -> bool:
    """Like alive(), for a process seen earlier (psutil checks it is still that process, not a reused pid)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def postgres_running(var: Path) -> bool:
    """Postgres stops by removing postmaster.pid; a pid file left by a dead server does not count."""
    return alive(postmaster_pid(var))


def redis_socket(var: Path) -> Path:
    return var / "redis" / "redis.sock"


def redis_running(var: Path) -> bool:
    """Whether something answers PING on the embedded Redis socket."""
    path = redis_socket(var)
    if not path.exists():
        return False
    try:
        with redis.Redis(unix_socket_path=str(path), socket_timeout=2) as client:
            return bool(client.ping())
    except redis.ConnectionError:
        return False


def redis_server_pid(var: Path) -> int:
    with redis.Redis(unix_socket_path=str(redis_socket(var)), socket_timeout=2) as client:
        return int(client.info("server")["process_id"])


def assert_servers_stopped(var: Path, context: str = "") -> None:
    assert not postgres_running(var), f"embedded Postgres (pid {postmaster_pid(var)}) still runs\n{context}"
    assert not redis_running(var), f"embedded Redis still answers on {redis_socket(var)}\n{context}"


def stop_leftover_servers(var: Path) -> None:
    """Teardown: stop servers a failed test left behind (Postgres: fast shutdown; Redis: SIGTERM)."""
    servers: list[tuple[psutil.Process, signal.Signals]] = []
    for pid_file, stop_signal in (
        (var / "postgres" / "postmaster.pid", signal.SIGINT),
        (var / "redis" / "redis.pid", signal.SIGTERM),
    ):
        pid = read_pid(pid_file)
        if pid is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                servers.append((psutil.Process(pid), stop_signal))
    for process, stop_signal in servers:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(stop_signal)
    _, still_alive = psutil.wait_procs([process for process, _ in servers], timeout=15)
    for process in still_alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def kill_process_tree(process: subprocess.Popen[Any], known_descendants: list[psutil.Process]) -> None:
    """Teardown: SIGKILL `process`, its process group and every descendant (children run in sessions of their own)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        known_descendants = [*known_descendants, *psutil.Process(process.pid).children(recursive=True)]
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    for descendant in known_descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            descendant.kill()
    psutil.wait_procs(known_descendants, timeout=10)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET, error statuses included; raises OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (our own http:// URL)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ask(base: str, question: str) -> dict[str, Any]:
    """A web visitor's question through the widget API; the assistant's reply."""
    visitor = {"session_id": "runtime-visitor-0001", "author": "user", "content": question, "locale": "es"}
    body = json.dumps(visitor).encode()
    url, headers = f"{base}/api/webchat/messages", {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310  (our own URL)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  (our own http:// URL)
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        pytest.fail(f"POST {url} answered {error.code}: {error.read().decode(errors='replace')}")
    assert answer.get("reply"), answer
    return {"text": answer["reply"], "citations": answer["metadata"]["citations"]}


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def var(tmp_path: Path) -> Iterator[Path]:
    """The children's TALIA_VAR_DIR; whatever server is still running there afterwards is stopped."""
    path = tmp_path / "var"
    # Short enough that EmbeddedRedis keeps its socket here rather than falling back to the temp dir.
    assert len(str(redis_socket(path))) < 100, f"tmp_path too long for a unix socket: {path}"
    yield path
    stop_leftover_servers(path)


# --- Tests -----------------------------------------------------------------------------------------


def test_manage_py_starts_embedded_servers_and_stops_them_on_exit(tmp_path: Path, var: Path) -> None:
    migrate = manage(tmp_path, "migrate", "--noinput")
    assert migrate.returncode == 0, output_of(migrate)
    assert_servers_stopped(var, output_of(migrate))

    probe = manage(tmp_path, "shell", "-c", PROBE)

    assert probe.returncode == 0, output_of(probe)
    lines = probe.stdout.splitlines()
    assert "extension: vector" in lines, output_of(probe)
    assert f"postgres socket dir: {(var / 'postgres').resolve()}" in lines, output_of(probe)
    assert "cache: pong" in lines, output_of(probe)
    assert f"redis url: unix://{redis_socket(var.resolve())}?db=0" in lines, output_of(probe)
    assert_servers_stopped(var, output_of(probe))


def test_second_process_shares_the_running_servers(tmp_path: Path, var: Path) -> None:
    holder_log = tmp_path / "holder.log"
    with open(holder_log, "w") as log:
        holder = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", HOLD],
            cwd=BASE_DIR,
            env=clean_env(tmp_path),
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        ready = poll(lambda: holder.poll() is not None or "ready" in holder_log.read_text(), timeout=COMMAND_TIMEOUT_S)
        assert ready and holder.poll() is None, f"the holding process never got ready:\n{holder_log.read_text()}"
        assert postgres_running(var) and redis_running(var), holder_log.read_text()
        postgres_pid, redis_pid = postmaster_pid(var), redis_server_pid(var)

        second = manage(tmp_path, "shell", "-c", QUERY)

        assert second.returncode == 0, output_of(second)
        assert "ok" in second.stdout.splitlines(), output_of(second)
        # The first process still holds both servers: the second one joined them and left them running.
        assert postgres_running(var), f"Postgres stopped while another process held it\n{output_of(second)}"
        assert redis_running(var), f"Redis stopped while another process held it\n{output_of(second)}"
        assert postmaster_pid(var) == postgres_pid, "the second process started a Postgres of its own"
        assert redis_server_pid(var) == redis_pid, "the second process started a Redis of its own"

        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait(timeout=COMMAND_TIMEOUT_S) == 0, holder_log.read_text()
        assert_servers_stopped(var, holder_log.read_text())
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def test_supervisor_serves_health_and_stops_everything_on_sigint(tmp_path: Path, var: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    supervisor_log = tmp_path / "supervisor.log"
    with open(supervisor_log, "w") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "talia.runtime"],
            cwd=BASE_DIR,
            env=clean_env(tmp_path, PORT=str(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    descendants: list[psutil.Process] = []
    last_health: dict[str, Any] = {}

    def healthy() -> dict[str, Any] | None:
        if supervisor.poll() is not None:
            pytest.fail(f"the supervisor exited with {supervisor.returncode}:\n{supervisor_log.read_text()}")
        try:
            status, body = http_get(f"{base}/health")
        except OSError:
            return None  # Daphne is not listening yet
        last_health.update(status=status, body=body.decode(errors="replace"))
        try:
            report = json.loads(body)
        except ValueError:
            return None  # not the JSON answer (yet); the failure message shows what came back
        return report if status == 200 and report == ALL_HEALTHY else None

    try:
        report = poll(healthy, timeout=90, interval=0.5)
        assert report == ALL_HEALTHY, f"never healthy; last /health: {last_health}\n{supervisor_log.read_text()}"
        descendants = psutil.Process(supervisor.pid).children(recursive=True)
        status, _ = http_get(f"{base}/")
        assert status == 200, supervisor_log.read_text()
        # On first start the worker reads the bilingual demo site into the knowledge base...
        indexed = poll(lambda: "finished as completed: 16 fetched" in supervisor_log.read_text(), timeout=90)
        assert indexed, supervisor_log.read_text()
        # ...and the seeded demo assistant answers from it with the sentence that says so, citing the page
        # (a source link under the message in the widget, so not in the text).
        reply = ask(base, "¿Aceptáis el seguro de Adeslas?")
        assert reply["text"].startswith("¡Hola! Soy Sofía, el asistente virtual de Clínica Sonrisas."), reply
        assert "Aceptamos las pólizas dentales de Adeslas, Asisa, DKV, Mapfre y Sanitas." in reply["text"], reply
        assert "/demo-site/" not in reply["text"], reply
        assert reply["citations"][0]["url"].endswith("/demo-site/precios/"), reply

        os.kill(supervisor.pid, signal.SIGINT)

        returncode = supervisor.wait(timeout=60)
        log_text = supervisor_log.read_text()
        assert returncode == 0, log_text
        assert any(line.rstrip().endswith("| stopped") for line in log_text.splitlines()), log_text
        assert not accepts_connections(port), f"something still listens on port {port}\n{log_text}"
        survivors = [process for process in descendants if alive_process(process)]
        assert not survivors, f"children outlived the supervisor: {survivors}\n{log_text}"
        assert_servers_stopped(var, log_text)
        # First run against a fresh database: seed_demo created the demo accounts and printed their passwords.
        assert "shown only once" in log_text, log_text
    finally:
        kill_process_tree(supervisor, descendants)
