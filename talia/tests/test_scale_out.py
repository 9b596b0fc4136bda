"""Scale-out, proven: several web and worker processes on one Postgres and one Redis behave as one system.

Every process is started as an operator starts it (`python -m talia web|worker`, as in test_roles.py) on
the test session's database and Redis; the test talks to them over TCP as browsers do (aiohttp sockets and
REST), and OpenAI is the fake server at the wire. Nothing of the project is mocked.

1. Two web processes, A and B, and two workers. A visitor on A and an agent on B chat both ways after a
   handoff: the waiting conversation is in the queue of both processes (the console page each renders and
   the sockets on each), the handoff answer served by A counts the agent connected to B, and a supervisor's
   monitor socket on A sees that agent come online.
2. Visitors on both web processes ask at once while the model answers slowly; one worker is killed with
   SIGKILL in the middle of a turn. The other answers every pending turn: one stored reply per visitor
   message, none lost, none doubled, each pushed once to its visitor's socket.
3. A third web process started later serves the first visitor reconnecting: a `resume` with the last seq
   seen brings what the agent wrote meanwhile, and the agent's next message arrives live.

Then every process is stopped and its log holds no traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User

from conversations.models import AssistantRun, Conversation, Message, Sender
from talia.celery import workers_key
from talia.env import BASE_DIR
from talia.redis_client import get_redis
from talia.testing.browser import free_port, http_get, server_env
from talia.testing.fake_openai import RESPONSES, last_user_text, slow, text
from talia.testing.plugin import purge_task_queue, wait_for
from talia.testing.sockets import LiveSocket, SocketPool, session_cookie

pytestmark = [
    pytest.mark.fault,  # a worker is killed mid-turn
    pytest.mark.soak,  # several live processes and sockets for a couple of minutes
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]

START_TIMEOUT_S = 60
PUSH_TIMEOUT_S = 30
# Long enough that the killed worker is surely mid-turn, short enough for the survivor to answer them all.
SLOW_TURN_S = 3
SLOW_VISITORS = 6  # three on each web process
# The smallest allowed: a killed worker's turn is handed back within about TTL + TTL/3 seconds.
HEARTBEAT_TTL_S = 5
ANSWERED_TIMEOUT_S = 120
CSRF = "scalecsrftoken0123456789abcdefgh"  # a valid CSRF secret: 32 characters of [A-Za-z0-9]
BAD_LOG = re.compile(r"Traceback|Exception inside application|\b1011\b", re.IGNORECASE)
ASSISTANT_REPLY = "Hola, soy el asistente."
SLOW_REPLY = "Respuesta lenta pero segura."


@dataclass
class Role:
    """One `python -m talia <role>` process, in a process group of its own (so it can be killed whole)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL to the worker and its pool children at once: nothing gets to clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


class Cluster:
    """Starts web and worker roles on the test database and Redis; stops them all at the end."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.roles: list[Role] = []

    def _start(self, role: str, name: str, env: dict[str, str]) -> Role:
        log_path = self.tmp_path / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "talia", role],
                cwd=BASE_DIR,
                env={**self.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = Role(name, process, log_path)
        self.roles.append(started)
        return started

    def web(self, name: str) -> Role:
        port = free_port()
        web = self._start("web", name, {"HOST": "127.0.0.1", "PORT": str(port)})
        web.url = f"http://127.0.0.1:{port}"
        return web

    def worker(self, name: str) -> Role:
        env = {
            # One queue, so the role is that one Celery worker (no supervisor between): the web chat's
            # turns, briefs and sweeps all run from `turns`.
            "TALIA_WORKER_QUEUES": "turns",
            "TALIA_TURNS_CONCURRENCY": "1",
            "TALIA_WORKER_NAME": name,
            "TALIA_WORKER_HEARTBEAT_TTL_S": str(HEARTBEAT_TTL_S),
        }
        return self._start("worker", name, env)

    def wait_web(self, web: Role) -> None:
        def live() -> bool:
            web.alive()
            try:
                status, _ = http_get(f"{web.url}/health/live", timeout=2)
            except OSError:
                return False
            return status == 200

        wait_for(live, timeout=START_TIMEOUT_S, interval=0.2)

    def wait_worker(self, worker: Role) -> None:
        """Until the worker reports alive under its own node name (`<default queue>@<TALIA_WORKER_NAME>`)."""
        from django.conf import settings

        node = f"{settings.CELERY_TASK_DEFAULT_QUEUE}@{worker.name}"

        def beating() -> bool:
            worker.alive()
            return get_redis().zscore(workers_key(), node) is not None

        wait_for(beating, timeout=START_TIMEOUT_S, interval=0.2)

    def stop_all(self) -> dict[str, str]:
        """Stop every process (SIGTERM); their logs, by name."""
        for role in reversed(self.roles):
            role.stop()
        return {role.name: role.log() for role in self.roles}


@pytest.fixture
def cluster(
    transactional_db: None, static_files: Path, model_engine: Any, settings: Any, tmp_path: Path
) -> Iterator[Cluster]:
    """The roles' environment: the test database and Redis, the fake OpenAI, rate limits above this load."""
    from django.db import connection

    purge_task_queue()  # tasks left by earlier tests point at rows that no longer exist
    env = server_env(settings, connection.settings_dict)
    env.update(TALIA_WEBCHAT_RATE_PER_IP="10000/min", TALIA_WEBCHAT_RATE_PER_SESSION="10000/min")
    running = Cluster(env, tmp_path)
    try:
        yield running
    finally:
        for name, log in running.stop_all().items():
            print(f"--- {name} ---\n{log[-3000:]}")


# --- Helpers ---------------------------------------------------------------------------------------


def of_type(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items())


def message_from(sender: str, text_: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def matches(frame: dict[str, Any]) -> bool:
        if frame.get("type") != "message.new" or frame["message"]["sender"] != sender:
            return False
        return text_ is None or frame["message"]["text"] == text_

    return matches


async def arrived(socket: LiveSocket, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    frame = await socket.wait_for(predicate, PUSH_TIMEOUT_S)
    assert frame is not None, f"{socket.name}: {what} never arrived (closed: {socket.close_code}); got {socket.frames}"
    return frame


async def request(
    session: aiohttp.ClientSession, method: str, url: str, *, cookie: str = "", body: Any = None
) -> tuple[int, Any]:
    """A same-origin request as a page makes it: the Origin header, the session and CSRF cookies."""
    origin = url.split("/", 3)[:3]
    headers = {"Origin": "/".join(origin)}
    if cookie:
        headers["Cookie"] = f"{cookie}; csrftoken={CSRF}"
        headers["X-CSRFToken"] = CSRF
    data = None if body is None else json.dumps(body)
    if data is not None:
        headers["Content-Type"] = "application/json"
    async with session.request(method, url, data=data, headers=headers) as response:
        raw = await response.text()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw


def make_staff() -> tuple[User, str, str]:
    agent = User.objects.create_user("scale-agent", first_name="Ana")
    agent.groups.add(Group.objects.get_or_create(name="agents")[0])
    supervisor = User.objects.create_user("scale-supervisor", is_staff=True)
    return agent, session_cookie(agent), session_cookie(supervisor)


def visitor_path(session_id: str) -> str:
    return f"/ws/webchat/?session_id={session_id}"


# --- The test --------------------------------------------------------------------------------------


def test_two_webs_and_two_workers_act_as_one_and_a_third_web_resumes_a_visitor(cluster, model_engine):
    model_engine.default = text(ASSISTANT_REPLY)
    model_engine.when(lambda body: "despacio" in last_user_text(body), slow(SLOW_TURN_S, text(SLOW_REPLY)))
    web_a, web_b = cluster.web("web-a"), cluster.web("web-b")
    workers = [cluster.worker("scale-w1"), cluster.worker("scale-w2")]
    for web in (web_a, web_b):
        cluster.wait_web(web)
    for worker in workers:
        cluster.wait_worker(worker)
    agent, agent_cookie, supervisor_cookie = make_staff()

    asyncio.run(chat_across_two_webs(web_a, web_b, agent, agent_cookie, supervisor_cookie))
    asyncio.run(kill_a_worker_mid_turn(web_a, web_b, workers, model_engine))
    web_c = cluster.web("web-c")
    cluster.wait_web(web_c)
    asyncio.run(resume_on_a_third_web(web_b, web_c, agent_cookie))

    logs = cluster.stop_all()
    trouble = {name: [line for line in log.splitlines() if BAD_LOG.search(line)] for name, log in logs.items()}
    assert not any(trouble.values()), trouble
    # The killed worker's turn was handed back by the survivor's sweep, not left to the broker's redelivery.
    assert any("Recovered 1 turn(s)" in logs[worker.name] for worker in workers)


VISITOR = "scale-visitor-0001"


async def chat_across_two_webs(
    web_a: Role, web_b: Role, agent: User, agent_cookie: str, supervisor_cookie: str
) -> None:
    async with SocketPool(web_a.url) as on_a, SocketPool(web_b.url) as on_b:
        assert on_a.session is not None
        http = on_a.session
        monitor = await on_a.open_ready("monitor on A", "/ws/monitor/", cookie=supervisor_cookie)
        visitor = await on_a.open_ready("visitor on A", visitor_path(VISITOR))

        # The visitor talks to the assistant through A; a worker answers, the push reaches A's socket.
        await visitor.send({"type": "message", "content": "Hola", "client_message_id": "scale-0001-1"})
        await arrived(visitor, message_from(Sender.ASSISTANT, ASSISTANT_REPLY), "the assistant's reply")
        conversation_id = str((await sync_to_async(Conversation.objects.get)()).pk)

        # The agent opens the console on B: the monitor on A hears they are online.
        console = await on_b.open_ready("console on B", "/ws/console/", cookie=agent_cookie)
        online = await arrived(
            monitor,
            lambda f: f.get("type") == "agents.online" and [a["id"] for a in f["agents"]] == [agent.pk],
            "the agent on B, online",
        )
        assert online["agents"][0]["name"] == "Ana"

        # The visitor asks A for a person: A counts the agent connected to B; both processes' queues show it.
        status, answer = await request(http, "POST", f"{web_a.url}/api/webchat/handoff", body={"session_id": VISITOR})
        assert status == 200, answer
        assert (answer["status"], answer["agents_online"]) == ("queued", 1)
        await arrived(console, of_type("queue.added", conversation_id=conversation_id), "queue.added on B")
        await arrived(monitor, of_type("queue.added", conversation_id=conversation_id), "queue.added on A")
        for web in (web_a, web_b):
            status, page = await request(http, "GET", f"{web.url}/console/", cookie=agent_cookie)
            assert status == 200, f"{web.name}: {status}"
            assert conversation_id in page, f"the queue page of {web.name} does not list the waiting conversation"

        # The agent claims it on B: the visitor on A and the monitor on A are told.
        status, claimed = await request(
            http, "POST", f"{web_b.url}/console/api/conversations/{conversation_id}/claim", cookie=agent_cookie
        )
        assert status == 200, claimed
        await arrived(visitor, of_type("handoff.accepted"), "handoff.accepted on A")
        await arrived(monitor, of_type("handoff.accepted", conversation_id=conversation_id), "handoff.accepted")
        await console.send({"type": "watch", "conversation_id": conversation_id})
        await arrived(console, of_type("watching", conversation_id=conversation_id), "watching")

        # Live, both ways, across the two processes.
        await visitor.send({"type": "message", "content": "¿Me oyes?", "client_message_id": "scale-0001-2"})
        await arrived(console, message_from(Sender.CONTACT, "¿Me oyes?"), "the visitor's message on B")
        await arrived(monitor, message_from(Sender.CONTACT, "¿Me oyes?"), "the visitor's message on the monitor")
        status, sent = await request(
            http,
            "POST",
            f"{web_b.url}/console/api/conversations/{conversation_id}/messages",
            cookie=agent_cookie,
            body={"text": "Te oigo, soy Ana."},
        )
        assert status == 201, sent
        await arrived(visitor, message_from(Sender.AGENT, "Te oigo, soy Ana."), "the agent's message on A")

        pushed = [f["message"] for f in visitor.frames if f.get("type") == "message.new"]
        assert len({m["id"] for m in pushed}) == len(pushed), pushed  # each message pushed once
        texts = [m["text"] for m in pushed]
        for line in ("Hola", ASSISTANT_REPLY, "¿Me oyes?", "Te oigo, soy Ana."):
            assert texts.count(line) == 1, texts
        # After the handoff, the assistant stayed quiet: the only assistant reply is the first one.
        assert await sync_to_async(Message.objects.filter(sender=Sender.ASSISTANT).count)() == 1


def slow_session(i: int) -> str:
    return f"scale-slow-{i:04d}"


def held_runs() -> list[tuple[str, str, str]]:
    """(worker identity, trigger message id, its text) of every turn being run now."""
    return [
        (worker, str(message_id), question)
        for worker, message_id, question in AssistantRun.objects.filter(status=AssistantRun.Status.RUNNING).values_list(
            "worker", "trigger_message_id", "trigger_message__text"
        )
    ]


def pids_of(role: Role) -> set[int]:
    process = psutil.Process(role.process.pid)
    return {process.pid, *(child.pid for child in process.children(recursive=True))}


def replies_per_visitor_message() -> dict[str, int]:
    """For each slow visitor's message: how many assistant messages its conversation stored after it."""
    counts = {}
    for message in Message.objects.filter(sender=Sender.CONTACT, text__contains="despacio"):
        counts[message.text] = Message.objects.filter(
            conversation_id=message.conversation_id, sender=Sender.ASSISTANT, seq__gt=message.seq
        ).count()
    return counts


async def kill_a_worker_mid_turn(web_a: Role, web_b: Role, workers: list[Role], model_engine: Any) -> None:
    async with SocketPool(web_a.url) as on_a, SocketPool(web_b.url) as on_b:
        pools = [on_a, on_b]
        visitors = await asyncio.gather(
            *(
                pools[i % 2].open_ready(f"slow visitor {i} on {'AB'[i % 2]}", visitor_path(slow_session(i)))
                for i in range(SLOW_VISITORS)
            )
        )
        for i, visitor in enumerate(visitors):
            await visitor.send(
                {"type": "message", "content": f"Ve despacio {i}", "client_message_id": f"scale-slow-{i:04d}-1"}
            )

        # Mid-turn: a worker has claimed a turn and its model call is in flight (the fake holds it).
        def victim() -> tuple[Role, str, str] | None:
            asked = [last_user_text(r.body or {}) for r in model_engine.requests_to(RESPONSES)]
            for worker_identity, message_id, question in held_runs():
                pid = int(worker_identity.split(":")[1])
                for worker in workers:
                    if any(question in line for line in asked) and pid in pids_of(worker):
                        return worker, message_id, question
            return None

        doomed, doomed_message, doomed_text = await sync_to_async(wait_for)(
            victim, timeout=START_TIMEOUT_S, interval=0.1
        )
        doomed.kill()

        def all_answered() -> dict[str, int] | None:
            counts = replies_per_visitor_message()
            return counts if len(counts) == SLOW_VISITORS and all(counts.values()) else None

        counts = await sync_to_async(wait_for)(all_answered, timeout=ANSWERED_TIMEOUT_S, interval=0.5)
        await asyncio.sleep(2)  # a doubled reply would be stored by now: none may appear
        counts = await sync_to_async(replies_per_visitor_message)()
        assert counts == {f"Ve despacio {i}": 1 for i in range(SLOW_VISITORS)}
        runs = await sync_to_async(
            lambda: list(
                AssistantRun.objects.filter(trigger_message__text__contains="despacio").values_list("status", "worker")
            )
        )()
        assert [status for status, _ in runs] == [AssistantRun.Status.COMPLETED] * SLOW_VISITORS
        survivor = next(worker for worker in workers if worker is not doomed)
        survivor.alive()
        # The doomed turn was answered again, by the survivor; the model was asked once more for it.
        retried = await sync_to_async(lambda: AssistantRun.objects.get(trigger_message_id=doomed_message).worker)()
        assert int(retried.split(":")[1]) in pids_of(survivor)
        asked = [last_user_text(r.body or {}) for r in model_engine.requests_to(RESPONSES)]
        assert asked.count(doomed_text) == 2, asked

        # Each visitor's socket got its reply pushed once, whichever process it is on.
        for visitor in visitors:
            await arrived(visitor, message_from(Sender.ASSISTANT, SLOW_REPLY), "the slow reply")
        await asyncio.sleep(1)
        for visitor in visitors:
            replies = [f["message"]["id"] for f in visitor.frames if message_from(Sender.ASSISTANT)(f)]
            assert len(replies) == 1, (visitor.name, visitor.frames)


async def resume_on_a_third_web(web_b: Role, web_c: Role, agent_cookie: str) -> None:
    conversation = await sync_to_async(lambda: Conversation.objects.get(contact__identities__value=VISITOR))()
    last_seen = await sync_to_async(lambda: conversation.messages.order_by("-seq").values_list("seq", flat=True)[0])()
    api = f"{web_b.url}/console/api/conversations/{conversation.pk}/messages"
    async with SocketPool(web_c.url) as on_c:
        assert on_c.session is not None
        # The visitor is away (their socket to A closed with the previous step); the agent writes twice on B.
        for line in ("¿Sigues ahí?", "Te dejo el enlace."):
            status, sent = await request(on_c.session, "POST", api, cookie=agent_cookie, body={"text": line})
            assert status == 201, sent

        visitor = await on_c.open_ready("visitor on C", visitor_path(VISITOR))
        await visitor.send({"type": "resume", "after": last_seen})
        await arrived(visitor, message_from(Sender.AGENT, "Te dejo el enlace."), "the missed messages")
        missed = [f["message"] for f in visitor.frames if f.get("type") == "message.new"]
        assert [(m["seq"], m["text"]) for m in missed] == [
            (last_seen + 1, "¿Sigues ahí?"),
            (last_seen + 2, "Te dejo el enlace."),
        ]

        # And live again, through C, from the agent on B.
        status, sent = await request(on_c.session, "POST", api, cookie=agent_cookie, body={"text": "¿Lo ves?"})
        assert status == 201, sent
        await arrived(visitor, message_from(Sender.AGENT, "¿Lo ves?"), "the agent's message on C")
        live = [f["message"]["seq"] for f in visitor.frames if f.get("type") == "message.new"]
        assert live == [last_seen + 1, last_seen + 2, last_seen + 3]
