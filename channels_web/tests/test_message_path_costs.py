"""What the web door spends on one visitor message answered through the REST API, counted (not timed:
speed is measured in bench/).

- The door's SQL: the session with its contact, the message stored in one transaction (the
  conversation's number, the message, its event, the assistant's run), and after the reply one read
  of the run that stored it. The reply itself is never read back: the request listens from before the
  turn is queued (conversations.waiting.ReplyListener), so the push that announced it is the answer.
- Thread hops: the middleware run in the request's one thread (talia.middleware.SyncStack) and the
  view's database work is one hop, not one per middleware and per call.

The request goes through the ASGI handler (the async test client) as under Daphne; a real Celery
worker in a thread of this process answers it, and its statements are left out of the door's.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from asgiref import sync
from django.db.backends.utils import CursorWrapper

from conversations.models import Message, Sender

pytestmark = pytest.mark.django_db(transaction=True)

SESSION = "costs-path-session-0001"


async def say(async_client: Any, content: str) -> dict[str, Any]:
    response = await async_client.post(
        "/api/webchat/messages",
        data=json.dumps({"session_id": SESSION, "author": "user", "content": content, "locale": "es"}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def answered(settings: Any, celery_worker: Any) -> None:
    settings.TALIA_REPLY_WAIT_S = 20


@pytest.mark.usefixtures("answered")
async def test_a_known_visitors_message_costs_the_door_eight_statements_and_no_reread_of_the_reply(
    async_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker's threads, started with it, before any request's.
    worker_threads = {thread.ident for thread in threading.enumerate() if thread is not threading.main_thread()}
    await say(async_client, "Hola")  # contact, session and conversation created; the assistant has answered
    statements: list[str] = []
    execute = CursorWrapper._execute_with_wrappers  # type: ignore[attr-defined]  # not in the stubs

    def counted(cursor: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() not in worker_threads:
            statements.append(sql)
        return execute(cursor, sql, *args, **kwargs)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", counted)
    body = await say(async_client, "¿Cuánto cuesta una limpieza?")
    monkeypatch.undo()

    reply = await Message.objects.aget(pk=body["metadata"]["assistant_message_id"])
    assert reply.sender == Sender.ASSISTANT and body["reply"] == reply.text
    message_table = Message._meta.db_table
    reads_of_messages = [
        sql for sql in statements if sql.lstrip().upper().startswith("SELECT") and message_table in sql
    ]
    assert reads_of_messages == []
    # SELECT session+contact; BEGIN; UPDATE conversation (number); INSERT message, event, run; COMMIT;
    # SELECT the reply's run and the conversation's status.
    assert len(statements) <= 8, statements


@pytest.mark.usefixtures("answered")
async def test_a_message_takes_the_door_a_handful_of_thread_hops(
    async_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await say(async_client, "Hola")
    hops = {"sync_to_async": 0, "async_to_sync": 0}
    into_thread, onto_loop = sync.SyncToAsync.__call__, sync.AsyncToSync.__call__

    async def counted_into(self: Any, *args: Any, **kwargs: Any) -> Any:
        hops["sync_to_async"] += 1
        return await into_thread(self, *args, **kwargs)

    def counted_onto(self: Any, *args: Any, **kwargs: Any) -> Any:
        hops["async_to_sync"] += 1
        return onto_loop(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counted_into)
    monkeypatch.setattr(sync.AsyncToSync, "__call__", counted_onto)
    await say(async_client, "¿Cuánto cuesta una limpieza?")
    monkeypatch.undo()
    # Into the request's thread (21 before SyncStack and the one-hop view): Django's request_started
    # signal, the middleware stack, CSRF's process_view, the view's checks, validation and storing, the
    # run read after the reply, the response's rendering and its close. Back onto the loop: the view
    # below the stack, and joining the conversation's group from the thread after the commit.
    assert hops["sync_to_async"] <= 7, hops
    assert hops["async_to_sync"] <= 2, hops
