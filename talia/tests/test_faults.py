"""A live Daphne whose Redis and Postgres hang or stop, through proxies the test controls (talia.testing.faults).

The server under test reaches the session's Redis and test database only through two FaultProxy
instances, so the test can make either part hang (connection accepted, never a byte back) or refuse
(down) without disturbing anything else; the Celery worker (a thread of this process) talks to them
directly and keeps working. What must hold (issue 11, "Slow is a state, not an error"):
- every answer comes back within the connect/read timeouts, never a hang and never a traceback page;
- an outage is a 503 that names the part (JSON on API paths, the friendly page elsewhere), or, when the
  message was already stored, a success, and the message stays stored;
- /health answers within its own deadline;
- after recovery, everything accepted before or during the fault is answered (the sweep re-enqueues
  what the outage kept from the queue).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from conversations.models import AssistantRun, Conversation, Message, Sender
from conversations.tasks import requeue_unanswered_messages
from talia.env import BASE_DIR
from talia.testing.browser import SERVER_START_TIMEOUT_S, LiveServer, free_port, http_get, server_env
from talia.testing.faults import FaultProxy
from talia.testing.plugin import wait_for

pytestmark = pytest.mark.fault

# Generous bound on any one answer while a part is down: the sum of the timeouts on the request's path
# (rate limits, enqueue, realtime push, reply wait) is well under it; a hang is not.
ANSWER_BOUND_S = 60
HEALTH_TIMEOUT_S = 3.0
REPLY_WAIT_S = 3
# What a visitor may wait for a POST while Redis hangs: the first Redis timeout (TALIA_REDIS_TIMEOUT_S,
# 2 s) opens the breaker and the rest of the request skips Redis; a request that waits out each Redis
# use in turn (about 20 s) fails the test.
PROMPT_BOUND_S = 8
BREAKER_COOLDOWN_S = 4  # talia.redis_client.cooldown_s() at the default 2 s timeout


@dataclass
class ProxiedSystem:
    server: LiveServer
    redis: FaultProxy
    database: FaultProxy

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        bound: float = ANSWER_BOUND_S,
    ) -> tuple[int, dict[str, str], bytes, float]:
        """Status, headers, body and seconds taken; fails the test if no answer comes within `bound`."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310  (our own http:// URL)
            self.server.url + path, data=data, method=method, headers=headers or {}
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=bound) as response:  # noqa: S310
                status, head, content = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, head, content = error.code, dict(error.headers), error.read()
        except TimeoutError:
            pytest.fail(f"{method} {path}: no answer within {bound}s\n{self.server.log()}")
        return status, head, content, time.monotonic() - started

    def post_message(self, session_id: str, content: str, bound: float = ANSWER_BOUND_S) -> tuple[int, dict[str, Any]]:
        status, _, body, _ = self.request(
            "POST",
            "/api/webchat/messages",
            {"session_id": session_id, "author": "user", "content": content, "locale": "es"},
            bound=bound,
        )
        return status, json.loads(body)


@pytest.fixture
def proxied_system(
    transactional_db: None, static_files: Path, tmp_path: Path, settings: Any, celery_worker: Any
) -> Iterator[ProxiedSystem]:
    redis_socket = settings.REDIS_URL.removeprefix("unix://").split("?")[0]
    params = connection.settings_dict
    database_socket = f"{params['HOST']}/.s.PGSQL.{params['PORT'] or 5432}"
    with FaultProxy(unix_path=redis_socket) as redis_proxy, FaultProxy(unix_path=database_socket) as db_proxy:
        env = server_env(settings, {**params, "HOST": "127.0.0.1", "PORT": str(db_proxy.port)})
        env.update(
            REDIS_URL=f"redis://127.0.0.1:{redis_proxy.port}/0",
            TALIA_REPLY_WAIT_S=str(REPLY_WAIT_S),
            TALIA_DATABASE_CONNECT_TIMEOUT_S="2",
            # The pool's read deadline (talia/database.py): a hung Postgres fails a pooled request after
            # this long instead of never; shorter than the default 30 s only to keep the test quick.
            TALIA_DATABASE_READ_TIMEOUT_S="5",
            TALIA_HEALTH_TIMEOUT_S=str(HEALTH_TIMEOUT_S),
        )
        port = free_port()
        log_path = tmp_path / "daphne.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "talia.asgi:application"],
                cwd=BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        try:

            def healthy() -> bool:
                with contextlib.suppress(OSError):
                    return http_get(f"{server.url}/health", timeout=5)[0] == 200
                return False

            server.wait_until(healthy, "GET /health answering 200", SERVER_START_TIMEOUT_S)
            yield ProxiedSystem(server, redis_proxy, db_proxy)
        finally:
            redis_proxy.forward()
            db_proxy.forward()
            server.stop()


def replies_to(content: str) -> list[Message]:
    trigger = Message.objects.filter(text=content, sender=Sender.CONTACT).first()
    if trigger is None:
        return []
    return list(Message.objects.filter(conversation=trigger.conversation, seq__gt=trigger.seq, sender=Sender.ASSISTANT))


def assert_no_traceback_page(body: bytes) -> None:
    text = body.decode(errors="replace")
    assert "Traceback" not in text
    assert "technical_500" not in text and "You're seeing this error because" not in text


@pytest.mark.parametrize("fault", ["hang", "refuse"])
def test_redis_fault_keeps_the_message_and_it_is_answered_after_recovery(proxied_system, settings, fault):
    system = proxied_system
    session = "fault-" + secrets.token_hex(8)
    status, _ = system.post_message(session, "Hola, antes del fallo")
    assert status in (200, 202)

    getattr(system.redis, fault)()
    content = "¿Seguís ahí? " + secrets.token_hex(4)
    status, body = system.post_message(session, content)

    if status == 503:
        assert body["error"]["code"] == "redis_unavailable"
        assert not Message.objects.filter(text=content).exists()
        return
    assert status in (200, 202), body
    assert Message.objects.filter(text=content, sender=Sender.CONTACT).exists()  # accepted is stored
    health_status, _, health_body, elapsed = system.request("GET", "/health")
    assert health_status == 503
    assert json.loads(health_body)["redis"] == "down"
    assert elapsed < HEALTH_TIMEOUT_S + 2

    system.redis.forward()
    # The sweep (celery beat runs it every minute) puts back what the outage kept from the queue.
    settings.TALIA_REQUEUE_UNANSWERED_AFTER_S = 0
    requeue_unanswered_messages.delay()
    answered = wait_for(lambda: replies_to(content), timeout=60)
    assert len(answered) == 1
    time.sleep(2)  # a duplicate enqueue (the hung publish delivered late, plus the sweep) answers once
    assert len(replies_to(content)) == 1
    assert "Internal Server Error" not in system.server.log()


def test_a_hung_redis_gets_a_prompt_202_and_the_message_is_answered_once_redis_is_back(proxied_system, listen, caplog):
    """The Redis breaker: the first Redis timeout of the request opens it and the rest of the request's
    Redis work (second rate limit, push, enqueue, reply wait) is skipped, so the 202 comes within a few
    seconds. The turn, marked not queued, is queued by the worker's own recovery sweep (no requeue
    sweep here); after the cooldown the breaker lets Redis work through again (live push, live enqueue)."""
    system = proxied_system
    session = "fault-" + secrets.token_hex(8)
    status, body = system.post_message(session, "Hola, antes del fallo")
    assert status in (200, 202)
    conversation = Conversation.objects.get(pk=body["metadata"]["conversation_id"])

    system.redis.hang()
    content = "¿Seguís ahí? " + secrets.token_hex(4)
    status, body = system.post_message(session, content, bound=PROMPT_BOUND_S)  # a timed-out POST fails here

    assert status == 202, body
    assert body["metadata"]["status"] == "pending"
    assert Message.objects.filter(text=content, sender=Sender.CONTACT).exists()

    system.redis.forward()
    answered = wait_for(lambda: replies_to(content), timeout=60)
    assert len(answered) == 1
    assert "whose enqueue had failed" in caplog.text  # the worker's recovery sweep queued it
    assert "Redis failed" in system.server.log()  # the breaker opened in the web process

    time.sleep(BREAKER_COOLDOWN_S + 1)
    listener = listen(conversation.group_name)
    after = "Ya volvió todo " + secrets.token_hex(4)
    assert system.post_message(session, after, bound=PROMPT_BOUND_S)[0] in (200, 202)

    def pushed_live() -> bool:
        event = listener.receive(timeout=1.0)
        return bool(event and event.get("type") == "message.new" and event["message"]["text"] == after)

    wait_for(pushed_live, timeout=20)
    run = AssistantRun.objects.get(trigger_message__text=after)
    assert run.queued_at is not None  # enqueued by the web process itself, not marked for the sweep
    assert len(wait_for(lambda: replies_to(after), timeout=60)) == 1
    assert "Internal Server Error" not in system.server.log()


@pytest.mark.parametrize("fault", ["hang", "refuse"])
def test_database_fault_is_a_503_naming_the_database(proxied_system, fault):
    system = proxied_system
    staff = get_user_model().objects.create_user("sup", password="x-long-password", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(staff)
    cookie = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}", "Accept-Language": "en"}
    session = "fault-" + secrets.token_hex(8)
    before = "Hola, antes del fallo " + secrets.token_hex(4)
    assert system.post_message(session, before)[0] in (200, 202)

    getattr(system.database, fault)()
    status, body = system.post_message(session, "durante el fallo")
    console_status, _, console_body, _ = system.request("GET", "/console/", headers=cookie)
    admin_status, _, admin_body, _ = system.request("GET", "/admin/", headers=cookie)
    health_status, _, health_body, health_elapsed = system.request("GET", "/health")

    assert status == 503
    assert body["error"]["code"] == "database_unavailable"
    for page_status, page in ((console_status, console_body), (admin_status, admin_body)):
        assert page_status == 503
        assert "The database is not answering" in page.decode()
        assert_no_traceback_page(page)
    assert health_status == 503
    assert json.loads(health_body) == {"status": "error", "database": "down", "redis": "ok", "worker": "ok"}
    assert health_elapsed < HEALTH_TIMEOUT_S + 2

    system.database.forward()
    system.server.wait_until(lambda: http_get(f"{system.server.url}/health")[0] == 200, "recovery", 30)
    after = "Hola, después del fallo " + secrets.token_hex(4)
    assert system.post_message(session, after)[0] in (200, 202)
    wait_for(lambda: replies_to(before) and replies_to(after), timeout=60)
    assert "Internal Server Error" not in system.server.log()


def test_an_idle_worker_outlives_the_broker_socket_timeout(celery_worker, settings, caplog):
    """The worker waits in BRPOP (1 s server-side) read only when readable: the socket timeout never fires."""
    from conversations import inbox
    from conversations.models import Channel

    idle = 5 * settings.CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"]
    time.sleep(idle)
    content = "¿Hay alguien? " + secrets.token_hex(4)
    inbox.receive(Channel.WEB, "idle-" + secrets.token_hex(8), content, {}, "")

    wait_for(lambda: replies_to(content), timeout=30)
    assert "Timeout reading" not in caplog.text
