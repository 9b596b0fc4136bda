"""Hostile frames and abuse limits on every socket (visitor, console, monitor), through the real ASGI app,
the real Redis channel layer and the Redis-backed socket caps (talia.sockets)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, override_settings

from conversations.models import Message
from talia import sockets
from talia.asgi import application
from talia.redis_client import get_redis

pytestmark = pytest.mark.django_db(transaction=True)

VISITOR_HOST = [(b"host", b"testserver")]
STAFF_HOST = [(b"host", b"localhost"), (b"origin", b"http://localhost")]


@pytest.fixture(autouse=True)
def no_open_slots():
    """Socket slots live in Redis; every test starts with none held (a failed test may leave some)."""
    redis = get_redis()
    for key in redis.scan_iter(match=f"{sockets.SlotKey('*', '*', 0).redis_key}", count=500):
        redis.delete(key)


def visitor(session: str = "guard-session-0001", ip: str | None = None) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, f"/ws/webchat/?session_id={session}", headers=VISITOR_HOST)
    if ip is not None:
        socket.scope["client"] = (ip, 50000)  # the scope is read when the app first runs, on connect
    return socket


def staff(path: str, user: Any) -> WebsocketCommunicator:
    client = Client()
    client.force_login(user)
    headers = [*STAFF_HOST, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    return WebsocketCommunicator(application, path, headers=headers)


@pytest.fixture
def supervisor():
    user = get_user_model().objects.create_user("boss", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="agents")[0])
    return user


@pytest.fixture(params=["visitor", "console", "monitor"])
def any_socket(request, supervisor):
    if request.param == "visitor":
        return visitor()
    return staff(f"/ws/{request.param}/", supervisor)


async def opened(socket: WebsocketCommunicator) -> WebsocketCommunicator:
    connected, _ = await socket.connect(timeout=5)
    assert connected
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    return socket


async def still_open(socket: WebsocketCommunicator) -> None:
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}


async def close_code(socket: WebsocketCommunicator) -> int:
    output = await socket.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    return int(output["code"])


HOSTILE_FRAMES = [
    pytest.param({"bytes": b'{"type": "ping"}'}, "binary_frame", id="binary"),
    pytest.param({"bytes": b"\x00\xff" * 50_000}, "too_large", id="binary-oversize"),
    pytest.param({"text": '{"type": "ping", "x": ' + "[" * 50 + "]" * 50 + "}"}, "malformed_json", id="nested"),
    pytest.param({"text": "[" * 30_000 + "]" * 30_000}, "malformed_json", id="nested-past-recursion"),
    pytest.param({"text": '{"type": "message", "content": "a\\u0000b"}'}, "invalid_text", id="nul"),
    pytest.param({"text": '{"type": "message", "content": "\\ud800"}'}, "invalid_text", id="surrogate"),
    pytest.param({"text": '{"type\\udfff": "ping"}'}, "invalid_text", id="surrogate-key"),
    pytest.param({"text": json.dumps({"type": "message", "content": "x" * 70_000})}, "too_large", id="oversize"),
    pytest.param({"text": "[1, 2, 3]"}, "not_an_object", id="array"),
    pytest.param({"text": "not json"}, "malformed_json", id="garbage"),
    pytest.param({"text": ""}, "malformed_json", id="empty"),
    pytest.param({"text": '{"type": NaN}'}, "malformed_json", id="nan"),
    pytest.param({"text": '{"type": "resume", "after": 99999999999999999999}'}, "malformed_json", id="huge-int"),
]


@pytest.mark.parametrize(("frame", "code"), HOSTILE_FRAMES)
async def test_hostile_frames_get_an_error_frame_and_the_socket_stays_open(any_socket, frame, code):
    socket = await opened(any_socket)

    await socket.send_input({"type": "websocket.receive", **frame})

    reply = await socket.receive_json_from(timeout=5)
    assert reply["type"] == "error"
    assert reply["error"]["code"] == code
    assert reply["error"]["message"]
    await still_open(socket)
    assert await sync_to_async(Message.objects.count)() == 0
    await socket.disconnect()


@pytest.mark.parametrize("frame", [{"type": ["message"]}, {"type": {"a": 1}}, {"type": 7}, {}])
async def test_a_type_that_is_not_a_string_is_an_unknown_type(frame):
    socket = await opened(visitor())

    await socket.send_json_to(frame)

    assert (await socket.receive_json_from(timeout=5))["error"]["code"] == "unknown_type"
    await still_open(socket)
    await socket.disconnect()


# --- Frame rate per socket ----------------------------------------------------------------------------


@override_settings(TALIA_WS_FRAME_RATE=(4, 3600), TALIA_WS_FRAME_HARD_LIMIT=6)
async def test_every_kind_of_frame_counts_against_the_rate_then_the_socket_is_closed_4429(any_socket):
    socket = await opened(any_socket)  # one ping spent
    await socket.send_json_to({"type": "typing", "active": True})
    await socket.send_json_to({"type": "resume", "after": 0})
    await socket.send_json_to({"type": "ping"})
    # Four frames allowed: answers for the typing and resume frames vary by socket, the ping's is a pong.
    while (await socket.receive_json_from(timeout=5)) != {"type": "pong"}:
        pass

    for _ in range(2):  # frames 5 and 6: refused, answered, the socket stays
        await socket.send_to(bytes_data=b"\x00")
        assert (await socket.receive_json_from(timeout=5))["error"]["code"] == "rate_limited"
    await socket.send_json_to({"type": "ping"})  # frame 7: past the hard limit

    assert await close_code(socket) == sockets.CLOSE_TOO_MANY_FRAMES
    await socket.disconnect()


@override_settings(TALIA_WS_FRAME_RATE=(2, 1), TALIA_WS_FRAME_HARD_LIMIT=1000)
async def test_the_frame_rate_is_a_window_that_passes():
    socket = await opened(visitor())

    async def ping() -> dict[str, Any]:
        await socket.send_json_to({"type": "ping"})
        return await socket.receive_json_from(timeout=5)

    replies = [await ping() for _ in range(6)]  # two per window: some of six quick pings are refused
    assert {"type": "pong"} in replies
    assert any(reply.get("error", {}).get("code") == "rate_limited" for reply in replies)
    await socket.receive_nothing(timeout=1.1)  # the next window

    assert await ping() == {"type": "pong"}
    await socket.disconnect()


# --- Sockets open at once -----------------------------------------------------------------------------


@override_settings(TALIA_WS_MAX_PER_SESSION=2)
async def test_sockets_per_widget_session_are_capped_and_a_closed_one_frees_its_slot():
    first, second = await opened(visitor(ip="10.0.0.1")), await opened(visitor(ip="10.0.0.2"))
    third = visitor(ip="10.0.0.3")
    await third.connect(timeout=5)

    assert await close_code(third) == sockets.CLOSE_TOO_MANY_SOCKETS
    await still_open(first)
    await third.disconnect()

    await first.disconnect()
    fourth = await opened(visitor(ip="10.0.0.4"))
    other_session = await opened(visitor("guard-session-0002", ip="10.0.0.5"))
    for socket in (second, fourth, other_session):
        await socket.disconnect()


@override_settings(TALIA_WS_MAX_PER_IP=2)
async def test_sockets_per_ip_are_capped_across_sessions():
    first = await opened(visitor("guard-ip-session-01", ip="203.0.113.9"))
    second = await opened(visitor("guard-ip-session-02", ip="203.0.113.9"))
    third = visitor("guard-ip-session-03", ip="203.0.113.9")
    elsewhere = await opened(visitor("guard-ip-session-04", ip="198.51.100.7"))
    await third.connect(timeout=5)

    assert await close_code(third) == sockets.CLOSE_TOO_MANY_SOCKETS
    for socket in (first, second, third, elsewhere):
        await socket.disconnect()


@override_settings(TALIA_WS_MAX_PER_SESSION=1)
async def test_slots_held_by_another_process_count_and_a_dead_process_slots_expire():
    session = "guard-session-0009"
    key = sockets.SlotKey("session", session, 1).redis_key
    redis = get_redis()
    # A socket of a Daphne process that died: its slot's expiry time has passed.
    redis.zadd(key, {"specific.dead-process!abc": time.time() - 1})
    alive = await opened(visitor(session))
    await alive.disconnect()

    # A socket of another live process: its slot still counts.
    redis.zadd(key, {"specific.other-process!def": time.time() + sockets.SLOT_TTL_S})
    refused = visitor(session)
    await refused.connect(timeout=5)
    assert await close_code(refused) == sockets.CLOSE_TOO_MANY_SOCKETS
    await refused.disconnect()


@override_settings(TALIA_WS_MAX_PER_USER=1)
async def test_staff_sockets_are_capped_per_user(supervisor):
    console = await opened(await sync_to_async(staff)("/ws/console/", supervisor))
    monitor = await sync_to_async(staff)("/ws/monitor/", supervisor)
    await monitor.connect(timeout=5)

    assert await close_code(monitor) == sockets.CLOSE_TOO_MANY_SOCKETS
    await still_open(console)
    await monitor.disconnect()
    await console.disconnect()


# --- The base itself, with a consumer made for the test ---------------------------------------------


class Exploding(sockets.GuardedJsonConsumer):
    """Admitted when the query string says so; its handler fails on every frame."""

    async def connect(self) -> None:
        await self.accept()
        if self.scope["query_string"] == b"admit":
            await self.admit([])

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        raise RuntimeError(f"boom on {content}")


async def test_a_failing_handler_is_logged_and_answered_not_a_1011(caplog):
    socket = WebsocketCommunicator(Exploding.as_asgi(), "/?admit")
    await socket.connect(timeout=5)

    for _ in range(2):
        await socket.send_json_to({"type": "ping"})
        reply = await socket.receive_json_from(timeout=5)
        assert reply["error"]["code"] == "server_error"

    assert [r.exc_info[0] for r in caplog.records if r.name == "talia.sockets" and r.exc_info] == [RuntimeError] * 2
    await socket.disconnect()


async def test_frames_before_admission_are_not_handled():
    socket = WebsocketCommunicator(Exploding.as_asgi(), "/")
    await socket.connect(timeout=5)

    await socket.send_json_to({"type": "ping"})

    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()
