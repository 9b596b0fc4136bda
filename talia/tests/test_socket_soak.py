"""Sockets live as long as the visitor or agent stays, and every reply reaches every open socket.

Both tests run a real Daphne (a child process) and talk to it over TCP with aiohttp, as browsers do:
- the soak test keeps 50 visitor, 5 console and 1 monitor sockets idle for 2 minutes (longer than every
  timeout on the path: the channel layer's 5 s blocking read and its socket timeout, Daphne's 20 s
  keepalive ping), then delivers one push to each and expects all of them, no socket closed and a
  clean server log;
- the load test has 50 visitors send 5 messages each over their sockets to a real Celery worker and
  expects every one of the 250 replies pushed live on the sockets, not only stored;
- the burst test has 200 visitor sockets of one Daphne process send a message at the same moment and
  expects all 200 stored and each pushed back to its socket exactly once (the channel layer's pool,
  capacity and expiry are sized for this in talia/channel_layer.py), no socket closed, a clean log.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User

from channels_web import services
from conversations import inbox, state
from conversations.models import Conversation, Message, Sender
from talia.testing.sockets import LiveSocket, SocketPool, session_cookie

pytestmark = [pytest.mark.soak, pytest.mark.django_db(transaction=True)]

VISITORS = 50
AGENTS = 5
IDLE_S = 120
DELIVERY_TIMEOUT_S = 45
# What a socket killed under the server looks like in Daphne's output (and any crash at all).
BAD_LOG = re.compile(r"1011|Timeout reading|Traceback|Exception inside application", re.IGNORECASE)


def session_id(i: int) -> str:
    return f"soak-visitor-{i:04d}"


def make_staff() -> tuple[list[str], str]:
    """Session cookies of 5 signed-in agents and one supervisor."""
    agents_group = Group.objects.get_or_create(name="agents")[0]
    cookies = []
    for i in range(AGENTS):
        agent = User.objects.create_user(f"soak-agent-{i}")
        agent.groups.add(agents_group)
        cookies.append(session_cookie(agent))
    supervisor = User.objects.create_user("soak-supervisor", is_staff=True)
    return cookies, session_cookie(supervisor)


def no_trouble_in(log: str) -> list[str]:
    return [line for line in log.splitlines() if BAD_LOG.search(line)]


@pytest.mark.timeout(IDLE_S + 150)
def test_idle_sockets_outlive_every_timeout_and_still_get_their_pushes(daphne_server):
    conversations = [
        services.post_message(services.Visitor(session_id=session_id(i)), "Hola").conversation for i in range(VISITORS)
    ]
    agent_cookies, supervisor_cookie = make_staff()
    waiting = inbox.receive("web", "soak-visitor-queued", "Quiero hablar con una persona").conversation

    def deliver() -> None:
        for i, conversation in enumerate(conversations):
            inbox.send(conversation, f"soak reply {i}", sender=Sender.ASSISTANT)
        state.request_handoff(Conversation.objects.get(pk=waiting.pk), requested_by="contact")

    async def scenario() -> None:
        async with SocketPool(daphne_server.url) as pool:
            visitors = await asyncio.gather(
                *(pool.open_ready(f"visitor {i}", f"/ws/webchat/?session_id={session_id(i)}") for i in range(VISITORS))
            )
            consoles = [
                await pool.open_ready(f"console {i}", "/ws/console/", cookie=cookie)
                for i, cookie in enumerate(agent_cookies)
            ]
            monitor = await pool.open_ready("monitor", "/ws/monitor/", cookie=supervisor_cookie)

            await asyncio.sleep(IDLE_S)
            closed = {socket.name: socket.close_code for socket in pool.sockets if socket.closed}
            assert not closed, f"sockets closed while idle: {closed}"

            await sync_to_async(deliver)()

            def reply_for(i: int) -> Any:
                return lambda f: f.get("type") == "message.new" and f["message"]["text"] == f"soak reply {i}"

            def queued(f: dict[str, Any]) -> bool:
                return f.get("type") == "queue.added" and f.get("conversation_id") == str(waiting.pk)

            arrived = await asyncio.gather(
                *(socket.wait_for(reply_for(i), DELIVERY_TIMEOUT_S) for i, socket in enumerate(visitors)),
                *(socket.wait_for(queued, DELIVERY_TIMEOUT_S) for socket in [*consoles, monitor]),
            )
            missing = [
                socket.name
                for socket, frame in zip([*visitors, *consoles, monitor], arrived, strict=True)
                if frame is None
            ]
            assert not missing, f"{len(missing)} of {len(arrived)} pushes never arrived: {missing}"
            closed = {socket.name: socket.close_code for socket in pool.sockets if socket.closed}
            assert not closed, f"sockets closed: {closed}"

    asyncio.run(scenario())
    assert not no_trouble_in(daphne_server.log_path.read_text(errors="replace"))


QUESTIONS = [
    "¿Cuánto cuesta una limpieza?",
    "¿Qué horario tenéis?",
    "¿Dónde estáis?",
    "¿Trabajáis con empresas?",
    "Gracias por la información",
]
REPLY_TIMEOUT_S = 90
# Visitors read the page before typing, and read each reply before the next message: pauses longer
# than the channel layer's 5 s blocking read, where sockets used to die.
READING_S = 8


@pytest.fixture
def generous_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """250 messages from one IP in a minute is this test's load, not abuse (set before Daphne starts)."""
    monkeypatch.setenv("TALIA_WEBCHAT_RATE_PER_IP", "10000/min")


@pytest.mark.timeout(240)
def test_every_reply_of_50_visitors_sending_5_messages_is_pushed_live(generous_limits, request):
    server = request.getfixturevalue("live_system")  # after generous_limits: Daphne reads them at start

    async def visitor(pool: SocketPool, i: int) -> Any:
        socket = await pool.open_ready(f"visitor {i}", f"/ws/webchat/?session_id=load-visitor-{i:04d}")
        await asyncio.sleep(READING_S)
        for n, question in enumerate(QUESTIONS):
            if socket.closed:
                break
            await asyncio.sleep(0.5 * (i % 4))
            try:
                await socket.send({"type": "message", "content": question, "client_message_id": f"load-{i:04d}-{n}"})
            except aiohttp.ClientError:
                break  # closed under us: counted below
            # The next message once this one is answered (or given up on: the count below tells).
            await socket.wait_for(answered(socket, n + 1), REPLY_TIMEOUT_S / len(QUESTIONS))
        return socket

    def answered(socket: LiveSocket, count: int) -> Callable[[dict[str, Any]], bool]:
        return lambda frame: len([x for x in socket.frames if is_reply(x)]) >= count

    def is_reply(frame: dict[str, Any]) -> bool:
        return frame.get("type") == "message.new" and frame["message"]["sender"] == Sender.ASSISTANT

    def stored_replies() -> set[str]:
        return {
            str(pk)
            for pk in Message.objects.filter(
                conversation__contact__identities__value__startswith="load-visitor-", sender=Sender.ASSISTANT
            ).values_list("pk", flat=True)
        }

    async def scenario() -> tuple[set[str], set[str], list[str]]:
        async with SocketPool(server.url) as pool:
            sockets = await asyncio.gather(*(visitor(pool, i) for i in range(VISITORS)))
            # Everything asked is answered in the database; then what reached the sockets is counted.
            for _ in range(REPLY_TIMEOUT_S * 2):
                stored = await sync_to_async(stored_replies)()
                if len(stored) >= VISITORS * len(QUESTIONS):
                    break
                await asyncio.sleep(0.5)
            live = {f["message"]["id"] for socket in sockets for f in socket.frames if is_reply(f)}
            for _ in range(20):  # pushes of the last replies may still be on their way
                if stored <= live:
                    break
                await asyncio.sleep(0.5)
                live = {f["message"]["id"] for socket in sockets for f in socket.frames if is_reply(f)}
            closed = [f"{socket.name}: {socket.close_code}" for socket in sockets if socket.closed]
            return stored, live, closed

    stored, live, closed = asyncio.run(scenario())
    assert len(stored) == VISITORS * len(QUESTIONS)
    assert not closed
    assert len(stored & live) == len(stored), f"{len(stored & live)} of {len(stored)} replies pushed live"
    assert not no_trouble_in(server.log_path.read_text(errors="replace"))


BURST = 200
BURST_TIMEOUT_S = 60


@pytest.fixture
def burst_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """200 sockets and 200 messages from one IP at once is this test's load, not abuse."""
    monkeypatch.setenv("TALIA_WEBCHAT_RATE_PER_IP", "10000/min")
    monkeypatch.setenv("TALIA_WS_MAX_PER_IP", str(BURST * 2))


@pytest.mark.timeout(240)
def test_200_sockets_sending_at_once_all_get_their_push(burst_limits, request):
    server = request.getfixturevalue("daphne_server")  # after burst_limits: Daphne reads them at start
    for i in range(BURST):  # open conversations, so each socket joins its conversation's group at connect
        services.post_message(services.Visitor(session_id=f"burst-visitor-{i:04d}"), "Hola")

    def mine(i: int) -> Callable[[dict[str, Any]], bool]:
        return lambda f: f.get("type") == "message.new" and f["message"]["text"] == f"burst {i}"

    async def scenario() -> tuple[list[LiveSocket], list[Any], dict[str, int | None]]:
        async with SocketPool(server.url) as pool:
            gate = asyncio.Semaphore(50)

            async def open_one(i: int) -> LiveSocket:
                async with gate:
                    name = f"burst-visitor-{i:04d}"
                    return await pool.open_ready(name, f"/ws/webchat/?session_id={name}", timeout=60)

            sockets = await asyncio.gather(*(open_one(i) for i in range(BURST)))
            await asyncio.gather(
                *(
                    socket.send({"type": "message", "content": f"burst {i}", "client_message_id": f"burst-{i:04d}"})
                    for i, socket in enumerate(sockets)
                )
            )
            arrived = await asyncio.gather(
                *(socket.wait_for(mine(i), BURST_TIMEOUT_S) for i, socket in enumerate(sockets))
            )
            await asyncio.sleep(1)  # a duplicate push would arrive right behind the first
            closed = {socket.name: socket.close_code for socket in sockets if socket.closed}
            return sockets, arrived, closed

    sockets, arrived, closed = asyncio.run(scenario())
    stored = Message.objects.filter(
        sender=Sender.CONTACT, text__startswith="burst ", conversation__contact__identities__value__startswith="burst-"
    ).count()
    assert stored == BURST
    missing = [socket.name for socket, frame in zip(sockets, arrived, strict=True) if frame is None]
    assert not missing, f"{len(missing)} of {BURST} pushes never arrived: {missing[:10]}"
    pushed = [len(socket.find(mine(i))) for i, socket in enumerate(sockets)]
    assert pushed == [1] * BURST
    errors = [f for socket in sockets for f in socket.frames if f.get("type") == "error"]
    assert not errors, errors[:5]
    assert not closed, f"sockets closed: {closed}"
    assert not no_trouble_in(server.log_path.read_text(errors="replace"))
