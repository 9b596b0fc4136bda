"""Four Celery queues, so that assistant turns, deliveries, ingest and analysis cannot starve each other.

The routes live in one place (CELERY_TASK_ROUTES in talia/settings.py); the `worker` role starts one
Celery worker per queue in TALIA_WORKER_QUEUES, each with its own TALIA_<QUEUE>_CONCURRENCY. The role's
commands are read from a fresh interpreter, since the queue list and the concurrencies are parsed from
the environment when the settings load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from talia.celery import app
from talia.env import BASE_DIR

PRINT_WORKERS = (
    "import json, django; django.setup(); from talia.runtime.roles import worker_commands; "
    "print(json.dumps(worker_commands()))"
)


def worker_commands_with(**overrides: str) -> dict[str, list[str]]:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("CONCURRENCY") and k != "TALIA_WORKER_QUEUES"}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_WORKERS],
        cwd=BASE_DIR,
        env={**environment, "TALIA_REDIS_PREFIX": "q", **overrides},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def queue_and_concurrency(command: list[str]) -> tuple[str, str | None]:
    queue = command[command.index("-Q") + 1]
    concurrency = command[command.index("-c") + 1] if "-c" in command else None
    return queue, concurrency


@pytest.mark.parametrize(
    ("task", "kind"),
    [
        ("conversations.tasks.run_assistant_turn", "turns"),
        ("conversations.tasks.requeue_unanswered_messages", "turns"),
        ("conversations.tasks.write_handoff_brief", "turns"),
        ("conversations.tasks.deliver_message", "deliveries"),
        ("conversations.tasks.send_transcript", "deliveries"),
        ("rag.tasks.ingest_source", "ingest"),
        ("channels_whatsapp.tasks.download_media", "ingest"),
        ("channels_voice.tasks.store_recording", "ingest"),
        ("leads.tasks.analyse_conversations", "analysis"),
    ],
)
def test_each_kind_of_work_has_its_queue(settings, task, kind):
    assert app.amqp.router.route({}, task)["queue"].name == settings.TALIA_QUEUES[kind]


def test_the_four_queues_are_distinct_and_turns_is_the_default(settings):
    assert list(settings.TALIA_QUEUES) == ["turns", "deliveries", "ingest", "analysis"]
    assert len(set(settings.TALIA_QUEUES.values())) == 4
    assert settings.CELERY_TASK_DEFAULT_QUEUE == settings.TALIA_QUEUES["turns"] == settings.REDIS_PREFIX


def test_worker_role_starts_one_worker_per_queue_with_its_own_concurrency():
    commands = worker_commands_with(
        TALIA_TURNS_CONCURRENCY="5", TALIA_DELIVERIES_CONCURRENCY="3", TALIA_INGEST_CONCURRENCY="2"
    )
    assert {name: queue_and_concurrency(c) for name, c in commands.items()} == {
        "worker-turns": ("q", "5"),
        "worker-deliveries": ("q.deliveries", "3"),
        "worker-ingest": ("q.ingest", "2"),
        "worker-analysis": ("q.analysis", "1"),  # the default
    }
    assert all(c[c.index("-n") + 1] == f"{queue_and_concurrency(c)[0]}@%h" for c in commands.values())


def test_worker_role_runs_only_the_queues_asked_for():
    commands = worker_commands_with(TALIA_WORKER_QUEUES="analysis,turns", TALIA_TURNS_CONCURRENCY="0")
    # In the settings' order; 0 leaves Celery's default (one per CPU), so no -c.
    assert {name: queue_and_concurrency(c) for name, c in commands.items()} == {
        "worker-turns": ("q", None),
        "worker-analysis": ("q.analysis", "1"),
    }


def test_the_older_queue_names_and_concurrencies_still_work():
    commands = worker_commands_with(
        TALIA_WORKER_QUEUES="bulk", TALIA_BULK_WORKER_CONCURRENCY="4", TALIA_WORKER_CONCURRENCY="7"
    )
    assert {name: queue_and_concurrency(c) for name, c in commands.items()} == {
        "worker-ingest": ("q.ingest", "4"),
        "worker-analysis": ("q.analysis", "1"),
    }
    default = worker_commands_with(TALIA_WORKER_QUEUES="default", TALIA_WORKER_CONCURRENCY="7")
    assert {name: queue_and_concurrency(c) for name, c in default.items()} == {
        "worker-turns": ("q", "7"),
        "worker-deliveries": ("q.deliveries", "2"),
    }


def test_an_unknown_queue_is_refused_naming_the_variable():
    environment = {**os.environ, "TALIA_WORKER_QUEUES": "turns,emails"}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_WORKERS], cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "TALIA_WORKER_QUEUES must list some of turns, deliveries, ingest, analysis" in result.stderr


def test_make_run_starts_a_worker_for_every_queue(settings):
    from talia.runtime import supervisor

    assert supervisor.WORKER_QUEUES == settings.WORKER_QUEUE_KINDS == tuple(settings.TALIA_QUEUES)
    assert {f"worker-{kind}" for kind in settings.WORKER_QUEUE_KINDS} <= set(supervisor.COLOURS)
