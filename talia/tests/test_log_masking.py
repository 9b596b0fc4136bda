"""Visitor session ids and tokens never reach a log: Daphne's access log, Django's and our own loggers."""

from __future__ import annotations

import base64
import io
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import AsyncClient

from leads.models import CalendarFeed
from talia.asgi import application
from talia.logmask import MaskSecrets, mask
from talia.testing.browser import LiveServer, http_get


def new_secret() -> str:
    """A session id the logs have never seen, shaped like the widget's."""
    return "sess" + secrets.token_urlsafe(18)


def log_files() -> str:
    """Everything the area files (webchat.log, assistant.log...) hold, from every process of this run."""
    assert settings.LOG_DIR is not None
    return "".join(path.read_text(errors="replace") for path in Path(settings.LOG_DIR).glob("*.log*"))


@pytest.fixture
def console_output() -> Iterator[io.StringIO]:
    """What the real console handler (the one LOGGING configured, with its filters) writes, during the test."""
    [handler] = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    captured = io.StringIO()
    previous = handler.setStream(captured)
    try:
        yield captured
    finally:
        handler.setStream(previous)


# --- The filter --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        'GET /api/webchat/messages?session_id={s}&after=3 HTTP/1.1" 200',
        "WSCONNECT /ws/webchat/?token={s}&session_id={s}&locale=es",
        "Not Found: /api/webchat/history/{s}/x",
        "GET /calendar/{s}.ics",
        "{{'session_id': '{s}', 'after': 0}}",
        '{{"session_id": "{s}"}}',
        "X-TalIA-Token: {s}",
        "DETAIL:  Key (channel, value)=(web, {s}) already exists.",
        "DETAIL:  Key (session_id)=({s}) already exists.",
        "identity web:{s}",
        "next=%2Fapi%2Fwebchat%2Fmessages%3Fsession_id%3D{s}",
    ],
)
def test_every_form_a_secret_takes_in_a_line_is_masked(line):
    secret = new_secret()

    masked = mask(line.format(s=secret))

    assert secret not in masked and secret[:4] + "…" in masked
    assert mask(masked) == masked


def test_messages_arguments_and_tracebacks_are_masked():
    secret = new_secret()
    try:
        raise ValueError(f"no conversation for session_id={secret}")
    except ValueError:
        record = logging.LogRecord(
            "talia.webchat",
            logging.ERROR,
            __file__,
            1,
            "Visitor %s: %s",
            ("web:" + secret, {"session_id": secret}),
            sys.exc_info(),
        )

    assert MaskSecrets().filter(record)

    formatted = logging.Formatter().format(record)
    assert secret not in formatted and "ValueError: no conversation for session_id=sess…" in formatted


def test_every_handler_masks():
    config = settings.LOGGING
    assert {
        name for name, handler in config["handlers"].items() if "mask_secrets" not in handler.get("filters", [])
    } == set()
    configured = [
        handler
        for handler in logging.getLogger().handlers + logging.getLogger("talia.webchat").handlers
        if not type(handler).__module__.startswith("_pytest")  # pytest's own capture handlers
    ]
    assert len(configured) == 2  # the console and webchat.log
    for handler in configured:
        assert any(isinstance(f, MaskSecrets) for f in handler.filters), handler


# --- Through the ASGI application in this process --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_app_logs_no_session_id(console_output):
    secret = new_secret()
    client = AsyncClient()

    socket_ = WebsocketCommunicator(
        application, f"/ws/webchat/?session_id={secret}&token=x", headers=[(b"host", b"localhost")]
    )
    connected, _ = await socket_.connect()
    assert connected
    await socket_.send_json_to({"type": "message", "content": "Hola"})
    assert (await socket_.receive_json_from(timeout=10))["type"] == "message.new"
    await socket_.disconnect()
    await client.get(f"/api/webchat/messages?session_id={secret}")
    await client.get(f"/api/webchat/history/{secret}")
    await client.get(f"/api/webchat/history/{secret}/nothing-here")  # Django logs "Not Found: <path>"
    # Whatever a logger of ours might write in the future about a visitor is masked as well.
    logging.getLogger("talia.webchat").warning("Probe: visitor session_id=%s", secret)

    written = console_output.getvalue() + log_files()
    assert f"Not Found: /api/webchat/history/{secret[:4]}…" in written
    assert f"session_id={secret[:4]}…" in written
    assert secret not in written


# --- Through a live Daphne, started as `make run` starts it ----------------------------------------------


def open_socket(server: LiveServer, path: str) -> socket.socket:
    """A WebSocket handshake by hand (Daphne logs it): returns the open connection after the 101."""
    address = urlsplit(server.url)
    assert address.hostname is not None and address.port is not None
    connection = socket.create_connection((address.hostname, address.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    connection.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {address.netloc}\r\nOrigin: {server.url}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(4096)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return connection


def test_daphne_access_and_application_logs_carry_no_secret(daphne_server, django_user_model):
    secret, feed_token = (
        new_secret(),
        CalendarFeed.objects.create(user=django_user_model.objects.create_user("sara", is_staff=True)).token,
    )
    base = daphne_server.url

    connection = open_socket(daphne_server, f"/ws/webchat/?session_id={secret}&token=x&locale=es")
    assert http_get(f"{base}/api/webchat/messages?session_id={secret}&token=x")[0] == 200
    assert http_get(f"{base}/api/webchat/history/{secret}")[0] == 200
    assert http_get(f"{base}/api/webchat/history/{secret}/nothing-here")[0] == 404
    assert http_get(f"{base}/calendar/{feed_token}.ics")[0] == 200
    connection.close()

    # Daphne logs a socket's end once it notices: wait for that line, then for the log to settle.
    daphne_server.wait_until(lambda: "WSDISCONNECT" in daphne_server.log(), "the socket's last access line", 30)
    time.sleep(0.5)
    written = daphne_server.log_path.read_text(errors="replace") + log_files()
    assert f"GET /api/webchat/messages?session_id={secret[:4]}…&token=x…" in written
    assert f"/api/webchat/history/{secret[:4]}…" in written and "Not Found: /api/webchat/history/" in written
    assert f"/calendar/{feed_token[:4]}….ics" in written
    assert "WSCONNECT" in written
    assert secret not in written and feed_token not in written


def test_celery_s_own_log_handlers_mask_too():
    from celery import signals

    worker_logger = logging.getLogger("talia-test-celery-root")
    handler = logging.StreamHandler(io.StringIO())
    worker_logger.addHandler(handler)
    secret = new_secret()

    # What Celery sends once it has set up the worker's (root) logging, as `celery worker` does.
    signals.after_setup_logger.send(sender=None, logger=worker_logger, loglevel=logging.INFO, logfile=None)
    worker_logger.warning("Retrying for session_id=%s", secret)

    written = handler.stream.getvalue()
    assert secret not in written and f"session_id={secret[:4]}…" in written
