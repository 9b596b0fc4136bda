"""What the sockets cost per frame and per connect, counted (not timed: speed is measured in bench/).

- Typing frames never reach the database: the visitor's socket knows its conversation from connect, and
  a console socket remembers each conversation's assignee after reading it once (until a change of
  assignee is pushed to it). They are relayed from the socket's own loop, so a database thread that is
  busy (or stuck on a slow query) does not hold them up.
- Connecting a known visitor's socket takes one database call (two statements: the
  session with its contact, the open conversation) and two Redis round trips (the socket caps, then both
  groups joined in one pipeline). A first-time visitor's takes five statements (one transaction, no
  savepoints).

Statements are counted where Django hands each one to the driver, on any connection in any thread; Redis
round trips are counted at the wire, as the calls
that write packed commands to a Redis socket (one per command, or one per pipeline).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio.connection
import redis.connection
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.db.backends.utils import CursorWrapper

from channels_web import events as web_events
from channels_web import services
from channels_web.models import WebchatSession
from conversations import inbox, state
from conversations.models import Event
from conversations.tests.console_helpers import console_socket
from conversations.tests.console_helpers import ready as console_ready
from talia.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

HOST = [(b"host", b"testserver")]
# The channel layer's own blocking read (channels-redis runs a cleanup script before each BZPOPMIN of
# the process's channel), the pool's liveness checks and a new connection's handshake are not the
# socket's work.
BACKGROUND = {b"BZPOPMIN", b"PING", b"HELLO", b"CLIENT", b"SELECT", b"AUTH"}
BLOCKING_READ_CLEANUP = b"redis.call('DEL', ARGV[2])"


def visitor_socket(session_id: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/webchat/?session_id={session_id}", headers=HOST)


async def ready(socket: WebsocketCommunicator) -> WebsocketCommunicator:
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    return socket


class Statements:
    """SQL statements run while inside, on any connection in any thread (the visitor's socket runs its
    database calls in worker threads): counted where Django hands each statement to its driver."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.patch = pytest.MonkeyPatch()

    async def __aenter__(self) -> Statements:
        execute = CursorWrapper._execute_with_wrappers  # type: ignore[attr-defined]  # not in the stubs

        def counted(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.count += 1
            return execute(cursor, *args, **kwargs)

        self.patch.setattr(CursorWrapper, "_execute_with_wrappers", counted)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.patch.undo()


@contextlib.contextmanager
def redis_round_trips() -> Iterator[list[bytes]]:
    """The commands of every round trip to Redis while inside (async and sync clients), background left out."""
    trips: list[bytes] = []
    lock = threading.Lock()

    def record(command: object) -> None:
        chunks = [command] if isinstance(command, (bytes, str, memoryview)) else list(command)  # type: ignore[call-overload]
        packed = b"".join(bytes(c) if not isinstance(c, str) else c.encode() for c in chunks)
        first_command = packed.split(b"\r\n")[2].upper()  # RESP: *<n>, $<len>, then the command's name
        if first_command not in BACKGROUND and BLOCKING_READ_CLEANUP not in packed:
            with lock:
                trips.append(packed)

    async_send = redis.asyncio.connection.AbstractConnection.send_packed_command
    sync_send = redis.connection.AbstractConnection.send_packed_command

    async def counted_async(self: object, command: object, *args: object, **kwargs: object) -> None:
        record(command)
        await async_send(self, command, *args, **kwargs)  # type: ignore[arg-type]

    def counted_sync(self: object, command: object, *args: object, **kwargs: object) -> None:
        record(command)
        sync_send(self, command, *args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redis.asyncio.connection.AbstractConnection, "send_packed_command", counted_async)
        patch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted_sync)
        yield trips


async def typing_events(channel: str, count: int) -> list[dict]:
    layer = get_channel_layer()
    events: list[dict] = []
    while len(events) < count:
        event = await asyncio.wait_for(layer.receive(channel), 5)
        if event["type"] == "typing":
            events.append(event)
    return events


async def test_a_visitors_typing_frames_run_no_sql_and_wait_for_no_database_thread():
    received = await sync_to_async(services.post_message)(services.Visitor("costs-typing-0001"), "Hola")
    conversation_id = str(received.conversation.pk)
    layer = get_channel_layer()
    agent_side = await layer.new_channel()
    await layer.group_add(received.conversation.group_name, agent_side)
    socket = await ready(visitor_socket("costs-typing-0001"))

    async with Statements() as statements:
        for active in (True, False, True):
            await socket.send_json_to({"type": "typing", "active": active})
        relayed = await typing_events(agent_side, 3)
    assert statements.count == 0
    assert [e["active"] for e in relayed] == [True, False, True]
    assert relayed[0] == {"type": "typing", "conversation_id": conversation_id, "sender": "contact", "active": True}

    # The database thread held by something slow: typing still goes through.
    release = threading.Event()
    busy = asyncio.ensure_future(database_sync_to_async(release.wait)(10))
    try:
        await asyncio.sleep(0.1)
        await socket.send_json_to({"type": "typing", "active": False})
        assert (await typing_events(agent_side, 1))[0]["active"] is False
        assert not busy.done()  # it was still holding the thread when the indicator arrived
    finally:
        release.set()
        await busy
    await layer.group_discard(received.conversation.group_name, agent_side)
    await socket.disconnect()


def make_agent(username: str) -> User:
    user = User.objects.create_user(username=username)
    user.groups.add(Group.objects.get_or_create(name="agents")[0])
    return user


async def test_an_agents_typing_reads_the_conversation_once_until_its_assignee_changes():
    received = await sync_to_async(inbox.receive)("web", "costs-typing-0002", "Hola")
    conversation = received.conversation
    ana = await sync_to_async(make_agent)("ana")
    await sync_to_async(state.request_handoff)(conversation, requested_by="contact")
    await sync_to_async(state.claim_conversation)(conversation, ana)
    layer = get_channel_layer()
    visitor_side = await layer.new_channel()
    await layer.group_add(conversation.group_name, visitor_side)
    socket = await console_ready(await sync_to_async(console_socket)(ana))
    frame = {"type": "typing", "conversation_id": str(conversation.pk), "active": True}

    async with Statements() as first:
        await socket.send_json_to(frame)
        await typing_events(visitor_side, 1)
    async with Statements() as later:
        for _ in range(5):
            await socket.send_json_to(frame)
        await typing_events(visitor_side, 5)
    assert (first.count, later.count) == (1, 0)

    # Handed back to the bot: the push makes the socket forget, and the next frame is refused.
    await sync_to_async(state.hand_back_to_assistant)(conversation)
    while (await socket.receive_json_from(timeout=5))["type"] != "conversation.handed_back":
        pass
    await socket.send_json_to(frame)
    refused = await socket.receive_json_from(timeout=5)
    assert refused["type"] == "error"
    assert refused["error"]["code"] == "forbidden"
    await layer.group_discard(conversation.group_name, visitor_side)
    await socket.disconnect()


async def test_connecting_a_known_visitors_socket_takes_two_statements_and_two_redis_round_trips():
    await sync_to_async(services.post_message)(services.Visitor("costs-connect-0001"), "Hola")
    warm = await ready(visitor_socket("costs-connect-0001"))  # the session's last_seen_at is fresh now
    await warm.disconnect()

    with redis_round_trips() as trips:
        async with Statements() as statements:
            socket = await ready(visitor_socket("costs-connect-0001"))
    assert statements.count == 2
    assert len(trips) == 2, [trip.split(b"\r\n")[:3] for trip in trips]
    assert b"EVAL" in trips[0].upper()  # the socket caps
    assert trips[1].upper().count(b"ZADD") == 2  # the contact's and the conversation's group, together
    await socket.disconnect()


async def test_connecting_a_first_time_visitors_socket_takes_five_statements():
    """Session looked up (none), then one transaction: contact, identity, session and its event; no
    savepoints, no lookups of what cannot exist yet (the new contact's conversation)."""
    async with Statements() as statements:
        socket = await ready(visitor_socket("costs-first-0001"))
    # SELECT session; INSERT contact, identity, session, event (and BEGIN, COMMIT, which this counter does
    # not see). Before: 12, with two savepoints, the identity and get_or_create lookups and the query for
    # the new contact's open conversation.
    assert statements.count == 5
    assert await WebchatSession.objects.filter(session_id="costs-first-0001").aexists()
    assert await Event.objects.filter(name=web_events.WEBCHAT_STARTED.name).acount() == 1
    await socket.disconnect()


async def test_a_first_time_visitor_whose_contact_exists_still_connects_to_it():
    """The identity kept without its session (the fast path's INSERT refused): the general way finds it."""
    contact = await sync_to_async(inbox.ensure_contact)("web", "costs-first-0002")
    socket = await ready(visitor_socket("costs-first-0002"))
    session = await WebchatSession.objects.aget(session_id="costs-first-0002")
    assert session.contact_id == contact.pk
    assert await Event.objects.filter(name=web_events.WEBCHAT_STARTED.name).acount() == 1
    await socket.disconnect()


async def test_the_round_trip_counter_sees_every_command():
    """The measure itself: two plain commands are two round trips, a pipeline of two is one."""
    layer = get_channel_layer()
    await layer.group_discard("costs-measure", "specific.costs!one")  # the pool's connection is open
    with redis_round_trips() as trips:
        await layer.group_add("costs-measure", "specific.costs!one")
        await layer.group_discard("costs-measure", "specific.costs!one")
    assert len(trips) == 2
    assert b"ZADD" in trips[0].upper()
    assert b"EXPIRE" in trips[0].upper()
    assert b"ZREM" in trips[1].upper()


async def test_a_push_to_an_empty_group_is_one_round_trip_and_to_a_listened_group_two():
    """group_send (talia.channel_layer): the group read in one pipeline, then one script for its members
    (channels-redis itself takes two round trips for an empty group and four for one with members)."""
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add("costs-push", listener)
    await layer.group_discard("costs-push-empty", listener)  # the pool's connection is open
    with redis_round_trips() as trips:
        await layer.group_send("costs-push-empty", {"type": "typing", "active": True})
    assert len(trips) == 1
    with redis_round_trips() as trips:
        await layer.group_send("costs-push", {"type": "typing", "active": False})
    assert len(trips) == 2
    assert await asyncio.wait_for(layer.receive(listener), 5) == {"type": "typing", "active": False}
    await layer.group_discard("costs-push", listener)
