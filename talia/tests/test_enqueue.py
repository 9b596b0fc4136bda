"""Celery work is queued one way (talia.enqueue): by name, after commit, never raising while Redis fails.

Real Redis broker, real database; the breaker is opened the way a real outage opens it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import transaction

from talia import enqueue
from talia.celery import app
from talia.redis_client import breaker
from talia.testing.plugin import purge_task_queue

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("talia", "conversations", "channels_web", "channels_whatsapp", "channels_voice", "leads", "rag")
PING = "talia.tests.test_enqueue.ping"


@app.task(name=PING)
def ping(value: str) -> str:  # never run here: only queued
    return value


def queued() -> int:
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        return int(channel.queue_declare(settings.CELERY_TASK_DEFAULT_QUEUE).message_count)


def task_names_in_source() -> set[str]:
    """Every literal task name passed to talia.enqueue in the project (and the NAME constants it uses)."""
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "tests" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                    func = ast.unparse(node.func)
                    if func in ("enqueue.after_commit", "enqueue.now", "enqueue_after_commit"):
                        names.add(str(node.args[0].value))
                elif (
                    isinstance(node, ast.Assign)
                    and ast.unparse(node.targets[0]).endswith("_TASK")
                    and isinstance(node.value, ast.Constant)
                ):
                    names.add(str(node.value.value))
    return names


def test_every_task_queued_by_name_exists():
    names = task_names_in_source()
    assert "conversations.tasks.run_assistant_turn" in names and "rag.tasks.ingest_source" in names
    for name in names:
        module, _, attribute = name.rpartition(".")
        task = getattr(importlib.import_module(module), attribute, None)
        assert task is not None and task.name == name, f"{name} is not a Celery task"


@pytest.mark.django_db(transaction=True)
def test_work_is_queued_after_commit_and_not_at_all_on_rollback():
    purge_task_queue()
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue.after_commit(PING, "rolled back", what="test")
        raise RuntimeError
    assert queued() == 0

    with transaction.atomic():
        enqueue.after_commit(PING, "committed", what="test")
        assert queued() == 0  # not before the commit
    assert queued() == 1
    purge_task_queue()


@pytest.mark.django_db(transaction=True)
def test_while_redis_fails_nothing_is_sent_nothing_raises_and_the_caller_is_told():
    purge_task_queue()
    breaker.record_failure(redis.TimeoutError("Timeout reading from socket"), "test")
    told = []
    with transaction.atomic():
        enqueue.after_commit(PING, "x", what="test", if_not_queued=lambda: told.append("not queued"))
    assert told == ["not queued"]
    assert enqueue.now(PING, "x", what="test") is False
    breaker.reset()
    assert queued() == 0

    assert enqueue.now(PING, "y", what="test") is True
    assert queued() == 1
    purge_task_queue()
