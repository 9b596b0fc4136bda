"""`python -m talia web|worker|beat|all` (talia/runtime/roles.py): each role started as an operator would,
against the test database and Redis, and seen doing its job."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from conversations import inbox
from conversations.models import Message, Sender
from talia.env import BASE_DIR
from talia.testing.browser import free_port, http_get, server_env
from talia.testing.plugin import purge_task_queue, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def role_env(transactional_db: None, settings: Any) -> dict[str, str]:
    """The environment a deployed role gets: the test database and Redis, DEBUG off."""
    from django.db import connection

    return server_env(settings, connection.settings_dict)


@pytest.fixture
def start_role(tmp_path: Path) -> Iterator[Any]:
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log_path = tmp_path / f"{role}-{len(started)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "talia", role],
                cwd=BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append((process, log_path))
        return process

    yield start
    for process, log_path in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        print(f"--- {log_path.name} ---\n{log_path.read_text(errors='replace')[-4000:]}")


def answers_live(url: str) -> bool:
    try:
        status, body = http_get(f"{url}/health/live", timeout=2)
    except OSError:
        return False
    return status == 200 and json.loads(body) == {"status": "ok"}


def test_web_serves_on_host_and_port_and_stops_on_sigterm(role_env, start_role):
    port = free_port()
    process = start_role("web", {**role_env, "HOST": "127.0.0.1", "PORT": str(port)})
    url = f"http://127.0.0.1:{port}"

    wait_for(lambda: process.poll() is not None or answers_live(url), timeout=60)
    assert process.poll() is None, "the web role exited"
    status, body = http_get(f"{url}/health/ready")
    assert status == 200, body
    assert json.loads(body)["migrations"] == "ok"

    process.send_signal(signal.SIGTERM)  # the role is Daphne itself (exec), so the signal reaches it
    assert process.wait(30) == 0


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def test_web_serves_on_a_unix_socket(role_env, start_role, tmp_path):
    path = str(tmp_path / "web.sock")
    process = start_role("web", {**role_env, "TALIA_WEB_SOCKET": path})

    def live() -> int | None:
        if process.poll() is not None:
            return -1
        try:
            connection = UnixHTTPConnection(path)
            connection.request("GET", "/health/live")
            return connection.getresponse().status
        except OSError:
            return None

    assert wait_for(live, timeout=60) == 200


def test_worker_answers_an_assistant_turn(role_env, start_role):
    purge_task_queue()
    process = start_role("worker", {**role_env, "TALIA_WORKER_QUEUES": "turns", "TALIA_TURNS_CONCURRENCY": "1"})

    conversation = inbox.receive("web", "roles-session-0001", "Hola, ¿qué horario tenéis?").conversation

    def replied() -> bool:
        assert process.poll() is None, "the worker role exited"
        return Message.objects.filter(conversation=conversation, sender=Sender.ASSISTANT).exists()

    assert wait_for(replied, timeout=90)


def test_an_unknown_role_is_refused_with_the_usage():
    result = subprocess.run(
        [sys.executable, "-m", "talia", "everything"], cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "usage: python -m talia {web|worker|beat|publisher|all}" in result.stderr


def test_a_role_without_its_data_stores_stops_naming_them(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "false", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "talia.example"}
    env["TALIA_VAR_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "talia", "web"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "DATABASE_URL must be set" in result.stderr


def test_all_runs_web_workers_and_beat_and_stops_them_together(role_env, start_role, settings):
    port = free_port()
    env = {
        **role_env,
        "PORT": str(port),
        "TALIA_TURNS_CONCURRENCY": "1",
        "TALIA_DELIVERIES_CONCURRENCY": "1",
        "TALIA_INGEST_CONCURRENCY": "1",
        "TALIA_ANALYSIS_CONCURRENCY": "1",
    }
    process = start_role("all", env)
    url = f"http://127.0.0.1:{port}"

    def everything_up() -> dict[str, str] | None:
        assert process.poll() is None, "the all role exited"
        try:
            status, body = http_get(f"{url}/health", timeout=2)
        except OSError:
            return None
        answer = json.loads(body)
        return answer if answer.get("worker") == "ok" else None

    assert wait_for(everything_up, timeout=120) == {"status": "ok", "database": "ok", "redis": "ok", "worker": "ok"}
    children = psutil.Process(process.pid).children(recursive=True)
    commands = [" ".join(child.cmdline()) for child in children]
    assert any("talia.runtime.web" in c for c in commands), commands
    queues = {c.split(" -Q ")[1].split()[0] for c in commands if " worker " in c and " -Q " in c}
    assert queues == set(settings.TALIA_QUEUES.values()), commands
    assert any(" beat " in c for c in commands), commands
    assert any("manage.py publish_events" in c for c in commands), commands

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], [p.pid for p in alive]


def test_beat_sends_the_due_sweeps_and_keeps_its_schedule_under_the_var_dir(role_env, start_role, tmp_path):
    var = tmp_path / "beat-var"
    process = start_role("beat", {**role_env, "TALIA_VAR_DIR": str(var)})
    (log_path,) = tmp_path.glob("beat-*.log")

    def sent() -> bool:
        assert process.poll() is None, "the beat role exited"
        # The shortest interval of the schedule (settings.CELERY_BEAT_SCHEDULE): 5 s.
        return "Sending due task expire-assignment-offers" in log_path.read_text(errors="replace")

    assert wait_for(sent, timeout=60)
    assert any(var.glob("celerybeat-schedule*"))
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0


def test_publisher_hands_events_to_the_sinks_and_stops_on_sigterm(role_env, start_role, settings):
    from talia.integrations.models import EventDelivery
    from talia.integrations.tests.receiver import Receiver

    stream = f"{settings.REDIS_PREFIX}:events:role"
    receiver = Receiver()
    try:
        from talia.integrations.models import WebhookEndpoint

        WebhookEndpoint.objects.create(url=receiver.url)
        inbox.receive("web", "session-publisher-role-0001", "Hola", assistant_turn=False)
        process = start_role("publisher", {**role_env, "TALIA_EVENTS_REDIS_STREAM": stream})

        assert wait_for(lambda: EventDelivery.objects.filter(status="delivered").count() == 4, timeout=60)
        assert len(receiver.requests) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        receiver.stop()
        from talia.redis_client import get_redis

        get_redis().delete(stream)
