"""The pooled connections of talia/database.py against the real Postgres: default, fork safety, read deadline.

The hung-Postgres case through a live Daphne is talia/tests/test_faults.py ("hang"; its server runs with
the default pool); real prefork Celery workers on the pool are conversations/tests/test_worker_recovery.py.
This process runs without the pool (talia.testing.plugin), so the in-process tests here pool its
connection for themselves, with the options settings.py gives a deployed process.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError, connection

from talia import database
from talia.env import BASE_DIR
from talia.testing.browser import LiveServer, http_get


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def pooled(transactional_db: None) -> Iterator[None]:
    """This process's default connection drawn from a pool, configured as settings.py configures it."""
    database.reconnect()  # the unpooled connection goes before the settings say "pool"
    options = connection.settings_dict["OPTIONS"]
    saved = dict(options), connection.settings_dict["CONN_HEALTH_CHECKS"]
    options["pool"] = database.pool_options(max_size=4, timeout_s=5, read_timeout_s=30)
    connection.settings_dict["CONN_HEALTH_CHECKS"] = True
    try:
        yield
    finally:
        database.reconnect()
        options.clear()
        options.update(saved[0])
        connection.settings_dict["CONN_HEALTH_CHECKS"] = saved[1]
        database.DeadlineConnection.read_timeout_s = 0.0


def test_the_pool_is_on_by_default_and_off_for_manage_py_commands():
    show = "from django.conf import settings; print(json.dumps(sorted(settings.DATABASES['default']['OPTIONS'])))"
    environment = {name: value for name, value in os.environ.items() if name != "TALIA_DATABASE_POOL"}

    served = subprocess.run(
        [sys.executable, "-c", f"import json, django; django.setup(); {show}"],
        cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    command = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", f"import json; {show}"],
        cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    assert "pool" in json.loads(served.stdout.splitlines()[-1])
    assert "pool" not in json.loads(command.stdout.splitlines()[-1])


def test_a_forked_child_never_uses_its_parents_connection_and_leaves_it_working(pooled):
    database.install_fork_guard()
    parent_pid = backend_pid()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report the backend it got, or the error, then leave without cleanup
        try:
            answer = str(backend_pid())
            connection.close()
        except BaseException as error:  # noqa: BLE001  (reported to the parent, which fails the test)
            answer = f"error: {error!r}"
        os.write(write_end, answer.encode())
        os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        answer = pipe.read()

    assert os.WEXITSTATUS(status) == 0
    assert answer.isdigit(), answer
    assert int(answer) != parent_pid  # its own connection, not the inherited socket
    assert backend_pid() == parent_pid  # the parent's session was neither used nor ended by the child


def test_a_statement_past_the_read_deadline_closes_the_connection(pooled, monkeypatch):
    """pg_sleep stands in for a server that does not answer: the wait ends at the deadline, not at the answer."""
    monkeypatch.setattr(database.DeadlineConnection, "read_timeout_s", 0.5)
    before = backend_pid()
    with pytest.raises(OperationalError, match=r"did not answer within 0\.5 s"), connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(5)")
    connection.close()  # the request cycle's end: the closed connection goes back and is discarded

    assert backend_pid() != before  # a fresh connection from the pool, which works


@pytest.fixture
def pool_of_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALIA_DATABASE_POOL_MAX", "2")  # read by server_env when the server starts


@pytest.fixture
def small_pool_system(pool_of_two: None, live_system: LiveServer) -> LiveServer:
    return live_system


def post_json(server: LiveServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310  (our own http:// URL)
        server.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_server_with_two_pooled_connections_answers_every_request(small_pool_system):
    """Every request gives its connection back: with two per process, a leak would turn the third into a 503."""
    server = small_pool_system
    sessions = ["pool-" + secrets.token_hex(8) for _ in range(3)]
    statuses = []
    for round_ in range(4):
        for session in sessions:
            status, body = post_json(
                server,
                "/api/webchat/messages",
                {"session_id": session, "author": "user", "content": f"Hola {round_}", "locale": "es"},
            )
            statuses.append(status)
            assert status in (200, 202), body
            assert http_get(f"{server.url}/api/webchat/messages?session_id={session}")[0] == 200
        assert http_get(f"{server.url}/health")[0] == 200

    assert statuses.count(200) >= 1  # replies came through the pool too
    assert "database_unavailable" not in server.log()
