"""Request ids and JSON log lines (talia/observability.py, TALIA_LOG_FORMAT=json)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conversations.models import Conversation
from talia import observability
from talia.env import BASE_DIR
from talia.testing.plugin import wait_for


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes, through the formatter and filters settings.LOGGING installs for json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    handler.addFilter(observability.ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def entries(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def say(client, content: str, **headers: str):
    body = {"session_id": "logs-session-0001", "author": "user", "content": content}
    return client.post("/api/webchat/messages", data=json.dumps(body), content_type="application/json", **headers)


def test_a_request_id_is_made_when_none_is_sent_and_echoed_when_one_is(db, client):
    made = client.get("/health/live")
    assert len(made["X-Request-ID"]) == 32

    assert client.get("/health/live", HTTP_X_REQUEST_ID="lb-7f3a.42")["X-Request-ID"] == "lb-7f3a.42"
    # Free text is not an id: a new one replaces it.
    replaced = client.get("/health/live", HTTP_X_REQUEST_ID="no spaces <script>")["X-Request-ID"]
    assert replaced != "no spaces <script>" and len(replaced) == 32


def test_the_turn_of_a_web_message_logs_its_request_conversation_and_channel(
    client, celery_worker, settings, json_lines
):
    settings.TALIA_REPLY_WAIT_S = 20

    response = say(client, "Hola", HTTP_X_REQUEST_ID="req-0001-web")

    assert response.status_code == 200, response.content
    assert response["X-Request-ID"] == "req-0001-web"
    conversation = Conversation.objects.get()
    finished = wait_for(lambda: [e for e in entries(json_lines) if "finished as" in e["message"]])
    (line,) = finished
    assert line["logger"] == "talia.assistant" and line["level"] == "INFO"
    assert line["request_id"] == "req-0001-web"  # carried from the request into the Celery task
    assert line["conversation_id"] == str(conversation.pk)
    assert line["channel"] == "web"
    assert line["time"].endswith("+00:00")


def test_the_inbox_binding_reaches_the_request_and_the_next_request_starts_afresh(db, client, settings):
    """The Django test client runs the middleware in the test's own thread, so its context is visible here:
    the conversation bound by the inbox (inside the async view's thread hops) comes back to the request's
    context, and the next request starts with only its own id."""
    settings.TALIA_REPLY_WAIT_S = 0
    say(client, "Hola", HTTP_X_REQUEST_ID="req-first")
    conversation = Conversation.objects.get()
    assert observability.request_id.get() == "req-first"
    assert observability.conversation_id.get() == str(conversation.pk)
    assert observability.channel.get() == "web"

    client.get("/health/live", HTTP_X_REQUEST_ID="req-second")

    assert observability.request_id.get() == "req-second"
    assert observability.conversation_id.get() == observability.channel.get() == ""


def test_json_format_is_what_the_settings_install(tmp_path):
    """A process started with TALIA_LOG_FORMAT=json writes parseable lines, masked, with the context."""
    script = (
        "import django, logging\n"
        "django.setup()\n"
        "from talia import observability\n"
        "observability.start('req-xyz')\n"
        "observability.bind(conversation='c0ffee', channel_name='whatsapp')\n"
        "logging.getLogger('talia.whatsapp').warning('refused session_id=%s', 'abcdef0123456789')\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    logging.getLogger('talia').exception('boom')\n"
    )
    env = {**os.environ, "TALIA_LOG_FORMAT": "json", "TALIA_LOG_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=120, check=True
    )

    console = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    refused = next(e for e in console if e["message"].startswith("refused"))
    assert refused == {
        "time": refused["time"],
        "level": "WARNING",
        "logger": "talia.whatsapp",
        "message": "refused session_id=abcd…",
        "request_id": "req-xyz",
        "conversation_id": "c0ffee",
        "channel": "whatsapp",
    }
    boom = next(e for e in console if e["message"] == "boom")
    assert "ZeroDivisionError" in boom["exception"]
    # The area's rotating file gets the same JSON lines.
    (area_line,) = (tmp_path / "whatsapp.log").read_text().splitlines()
    assert json.loads(area_line)["request_id"] == "req-xyz"


async def test_each_socket_gets_a_request_id_of_its_own_or_the_one_it_sent():
    seen: list[str] = []

    async def inner(scope, receive, send):  # the socket's application, as the router would call it
        seen.append(observability.request_id.get())

    app = observability.SocketObservability(inner)
    await app({"type": "websocket", "headers": [(b"x-request-id", b"lb-socket-1")]}, None, None)
    await app({"type": "websocket", "headers": []}, None, None)
    await app({"type": "websocket", "headers": [(b"x-request-id", b"not an id")]}, None, None)

    assert seen[0] == "lb-socket-1"
    assert len(seen[1]) == 32 and len(seen[2]) == 32 and seen[1] != seen[2]


def test_sentry_without_its_package_is_one_warning(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # as when sentry-sdk is not installed

    with caplog.at_level(logging.WARNING, logger="talia"):
        started = observability.setup_sentry("https://public@sentry.example.invalid/1")

    assert started is False
    (record,) = [r for r in caplog.records if "SENTRY_DSN" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert observability.setup_sentry("") is False  # no DSN: nothing to say
    assert len([r for r in caplog.records if "SENTRY_DSN" in r.getMessage()]) == 1
