"""Hostile input, fuzzed (marker `fuzz`; in the default run, about two minutes in all).

A corpus of malformed JSON documents, bytes and frames is drawn from Hypothesis strategies (derandomized,
so every run sends the same corpus) plus a fixed list of known troublemakers, then:
- sent as REST bodies to every API family on a live Daphne: never a 5xx, always a JSON body, every 4xx in
  the `{"error": {"code", "message"}}` shape, and no traceback in the server's log;
- sent as frames to the visitor, console and monitor sockets of the real ASGI app: every frame is
  answered or ignored, the socket stays open (no close, no 1011) and no handler fails;
- and schemathesis explores every operation in /api/schema/ on a live Daphne, signed in as staff:
  no server error on any documented endpoint.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from talia.asgi import application
from talia.testing.browser import LiveServer

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

CORPUS_SIZE = 240  # drawn from the strategies, on top of the fixed troublemakers
SESSION = "fuzz-session-0001"
CSRF = "fuzzcsrftoken0123456789abcdefghi"  # a valid CSRF secret: 32 characters of [A-Za-z0-9]
# The fuzzing server: no rate limit turns the fuzz into a rate-limit test, and with no worker running no
# request waits for a reply that cannot come (slow replies have tests of their own).
FUZZ_ENV = {
    "TALIA_WEBCHAT_RATE_PER_IP": "100000/min",
    "TALIA_WEBCHAT_RATE_PER_SESSION": "100000/min",
    "TALIA_REPLY_WAIT_S": "0",
}


# --- The corpus -------------------------------------------------------------------------------------

BAD_CHARS = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\ufffe", "\u202e", "\x7f"])
TEXT = st.text(max_size=20) | st.builds(lambda a, b, c: a + b + c, st.text(max_size=8), BAD_CHARS, st.text(max_size=8))
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
VALUES = st.recursive(
    SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(TEXT, kids, max_size=3), max_leaves=12
)
KINDS = st.sampled_from(["message", "typing", "resume", "ping", "watch", "close", ""]) | VALUES
FRAMES = st.fixed_dictionaries(
    {"type": KINDS},
    optional={
        "content": VALUES,
        "after": VALUES,
        "active": VALUES,
        "conversation_id": VALUES,
        "session_id": st.just(SESSION) | VALUES,
        "client_message_id": VALUES,
        "site": VALUES,
        "q": VALUES,
        "text": VALUES,
    },
)


def _nested(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return '{"type": "ping", "x": ' + opener * depth + "1" * (opener != "[") + closer * depth + "}"


def _mutate(document: str, position: int, how: str, char: str) -> str:
    position %= len(document) + 1
    if how == "cut":
        return document[:position]
    if how == "drop":
        return document[:position] + document[position + 1 :]
    return document[:position] + char + document[position:]


DOCUMENTS = st.one_of(
    FRAMES.map(json.dumps),  # well formed, often with NUL, surrogates, wrong types or huge integers
    VALUES.map(json.dumps),  # often not an object
    st.builds(_nested, st.integers(min_value=9, max_value=3000), st.sampled_from(["[", '{"a":'])),
    st.builds(
        _mutate,
        FRAMES.map(json.dumps),
        st.integers(min_value=0, max_value=200),
        st.sampled_from(["cut", "drop", "insert"]),
        st.sampled_from(["{", "}", "[", '"', "\\", ",", ":", "\x00", "\ud800", "NaN", "1e999"]),
    ),
    st.text(max_size=60),
)
BODIES = DOCUMENTS | st.binary(max_size=120)

TROUBLEMAKERS: list[str | bytes] = [
    "",
    " ",
    "null",
    "[]",
    "{}",
    "[" * 100_000 + "]" * 100_000,  # past the decoder's recursion guard, and oversize
    "[" * 20_000 + "]" * 20_000,  # past the recursion guard, within the size limit
    '{"type": "message", "content": "' + "x" * 70_000 + '"}',
    '{"type": "message", "content": "a\\u0000b"}',
    '{"type": "message", "content": "\\ud800"}',
    '{"type": "resume", "after": 1e999}',
    '{"type": "resume", "after": 9223372036854775808}',
    '{"type": "resume", "after": -1}',
    '{"type": "watch", "conversation_id": "00000000-0000-0000-0000-000000000000"}',
    '{"type": "watch", "conversation_id": {"a": 1}}',
    '{"type": NaN}',
    '{"type": ["message"]}',
    b"\xff\xfe\x00\x00",
    b"\xef\xbb\xbf{}",
    "\ufeff{}",
]


def draw(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` examples of `strategy`, the same ones on every run (Hypothesis as a generator)."""
    found: list[Any] = []

    @hypothesis_settings(
        max_examples=count,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


def corpus(strategy: st.SearchStrategy[Any]) -> list[Any]:
    drawn = draw(strategy, CORPUS_SIZE)
    assert len(drawn) >= 200, "the fuzz corpus must hold at least 200 generated inputs"
    return [*TROUBLEMAKERS, *drawn]


# --- REST on a live Daphne --------------------------------------------------------------------------


@pytest.fixture
def fuzz_server(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> LiveServer:
    for name, value in FUZZ_ENV.items():
        monkeypatch.setenv(name, value)  # read by the server process at start-up
    return request.getfixturevalue("daphne_server")


@pytest.fixture
def staff_cookie(db: None) -> str:
    """A signed-in supervisor (also an agent) as the Cookie header a browser sends, CSRF cookie included."""
    user = get_user_model().objects.create_user("fuzz-boss", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="agents")[0])
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}; csrftoken={CSRF}"


ENDPOINTS = [
    "/api/webchat/messages",
    "/api/webchat/close",
    "/api/webchat/handoff",
    "/api/webchat/consent",
    "/api/webchat/rating",
    "/api/webchat/transcript",
    "/api/webchat/details",
    "/console/api/conversations/00000000-0000-0000-0000-000000000000/messages",
    "/console/api/conversations/00000000-0000-0000-0000-000000000000/notes",
    "/api/rag/ingest",
    "/api/rag/search",
    "/api/v1/conversations/analyze",
]


def post_raw(server: LiveServer, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


def as_bytes(document: str | bytes) -> bytes:
    return document if isinstance(document, bytes) else document.encode("utf-8", "surrogatepass")


def test_malformed_rest_bodies_get_json_4xx_answers_never_a_5xx(fuzz_server, staff_cookie):
    headers = {"Cookie": staff_cookie, "X-CSRFToken": CSRF}
    statuses: dict[int, int] = {}

    for number, document in enumerate(corpus(BODIES)):
        path = ENDPOINTS[number % len(ENDPOINTS)]
        status, content_type, body = post_raw(fuzz_server, path, as_bytes(document), headers)
        statuses[status] = statuses.get(status, 0) + 1
        sent = repr(document)[:200]
        assert status < 500, f"{status} from {path} for {sent}: {body[:300]!r}"
        assert content_type.startswith("application/json"), f"{content_type} from {path} for {sent}"
        if status >= 400:
            error = json.loads(body)["error"]
            assert error["code"] and error["message"], f"{path} for {sent}: {body[:300]!r}"

    assert sum(count for status, count in statuses.items() if 400 <= status < 500) >= 200, statuses
    assert "Traceback" not in fuzz_server.log()


# --- Sockets through the ASGI app ------------------------------------------------------------------


@pytest.fixture
def socket_paths(staff_cookie: str) -> dict[str, tuple[str, list[tuple[bytes, bytes]]]]:
    staff = [(b"host", b"localhost"), (b"origin", b"http://localhost"), (b"cookie", staff_cookie.encode())]
    return {
        "visitor": (f"/ws/webchat/?session_id={SESSION}", [(b"host", b"testserver")]),
        "console": ("/ws/console/", staff),
        "monitor": ("/ws/monitor/", staff),
    }


@pytest.fixture
def no_socket_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.WARNING):
        yield
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not failures, [record.getMessage()[:300] for record in failures]


@override_settings(
    TALIA_WS_FRAME_RATE=(100_000, 60),
    TALIA_WS_FRAME_HARD_LIMIT=100_000,
    TALIA_WEBCHAT_RATE_PER_IP=(100_000, 60),
    TALIA_WEBCHAT_RATE_PER_SESSION=(100_000, 60),
)
@pytest.mark.parametrize("kind", ["visitor", "console", "monitor"])
async def test_malformed_frames_never_close_a_socket(kind, socket_paths, no_socket_errors):
    frames = await sync_to_async(corpus)(BODIES)
    path, headers = socket_paths[kind]
    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await socket.connect(timeout=10)
    assert connected
    errors = 0

    for frame in frames:
        if isinstance(frame, bytes):
            await socket.send_input({"type": "websocket.receive", "bytes": frame})
        else:
            await socket.send_input({"type": "websocket.receive", "text": frame})
        await socket.send_json_to({"type": "ping"})
        while True:  # everything up to the pong answers the frame (or is a push it caused)
            output = await socket.receive_output(timeout=10)
            assert output["type"] == "websocket.send", f"{output} after {repr(frame)[:200]}"
            reply = json.loads(output["text"])
            if reply == {"type": "pong"}:
                break
            if reply["type"] == "error":
                errors += 1
                assert reply["error"]["code"] != "server_error", f"{reply} after {repr(frame)[:200]}"

    assert errors >= 200
    await socket.disconnect()


def test_troublemaker_frames_through_a_live_daphne_never_close_the_socket(fuzz_server):
    """The same through Daphne's own WebSocket protocol: binary and oversize frames reach the consumer."""
    url = fuzz_server.url.replace("http", "ws", 1) + f"/ws/webchat/?session_id={SESSION}"

    async def run() -> list[str]:
        codes: list[str] = []
        async with aiohttp.ClientSession() as session, session.ws_connect(url, origin=fuzz_server.url) as socket:
            for frame in TROUBLEMAKERS:
                if isinstance(frame, bytes):
                    await socket.send_bytes(frame)
                else:
                    await socket.send_str(frame)
                await socket.send_json({"type": "ping"})
                while True:
                    message = await socket.receive(timeout=10)
                    assert message.type == aiohttp.WSMsgType.TEXT, f"{message} after {repr(frame)[:100]}"
                    reply = json.loads(message.data)
                    if reply == {"type": "pong"}:
                        break
                    codes.append(reply.get("error", {}).get("code", reply["type"]))
            assert not socket.closed
        return codes

    codes = asyncio.run(run())

    assert "server_error" not in codes
    assert {"binary_frame", "too_large", "malformed_json", "invalid_text", "not_an_object"} <= set(codes)
    assert "Traceback" not in fuzz_server.log_path.read_text(errors="replace")


# --- schemathesis on the documented API ------------------------------------------------------------


def test_schemathesis_finds_no_server_error_on_any_documented_endpoint(fuzz_server, staff_cookie, tmp_path: Path):
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{fuzz_server.url}/api/schema/",
        "--checks=not_a_server_error",
        "--max-examples=25",
        "--seed=11",
        "--workers=1",
        "--max-time=45",
        "--request-timeout=20",
        "--no-shrink",
        "--phases=examples,coverage,fuzzing",
        "--warnings=off",
        f"--header=Cookie: {staff_cookie}",
        f"--header=X-CSRFToken: {CSRF}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=150, cwd=tmp_path, check=False)  # noqa: S603

    output = result.stdout + result.stderr
    print(output[-6000:])  # shown with -s, or on failure: what was tested
    assert result.returncode == 0, output[-8000:] + "\n--- server ---\n" + fuzz_server.log()
    access = fuzz_server.log_path.read_text(errors="replace")
    assert "Traceback" not in access
    # Signed in as staff, the staff APIs were really exercised (not merely refused with 401/403).
    staff_answers = re.findall(r'"(?:GET|POST) /(?:console/api|api/v1|api/rag)/[^"]*" (\d{3})', access)
    assert {"200", "201", "202", "404"} & set(staff_answers), sorted(set(staff_answers))
