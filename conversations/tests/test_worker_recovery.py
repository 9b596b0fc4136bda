"""Turns whose worker died are taken back at once, and answered exactly once.

The sweep tests write heartbeats for made-up worker identities into the real Redis set the workers use.
The fault tests run real Celery workers (prefork, as in production) as subprocesses on the test database:
one is killed with SIGKILL mid-turn and another takes over; one runs a turn longer than the heartbeat TTL
and keeps it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from conversations import inbox
from conversations.assistant import turns
from conversations.delivery import release_abandoned_deliveries
from conversations.models import AssistantRun, DeliveryStatus, Message, Sender
from conversations.tasks import deliver_message, recover_abandoned_work, run_assistant_turn
from talia import workers
from talia.celery import workers_key
from talia.env import BASE_DIR
from talia.redis_client import get_redis
from talia.testing.browser import server_env
from talia.testing.fake_openai import RESPONSES, slow, text
from talia.testing.plugin import purge_task_queue, running_worker, wait_for

DEAD = "gone-host:4242:deadbeef"
LIVE = "busy-host:4343:cafef00d"


def heartbeat(member: str, seconds_ago: float) -> None:
    get_redis().zadd(workers.processes_key(), {member: time.time() - seconds_ago})


def held_by(received: inbox.Received, holder: str, *, claimed_seconds_ago: float) -> AssistantRun:
    """The turn of `received` as a worker process `holder` would have claimed it that long ago."""
    run = turns.claim_run(received.message.pk)
    assert run is not None
    AssistantRun.objects.filter(pk=run.pk).update(
        worker=holder, started_at=timezone.now() - timedelta(seconds=claimed_seconds_ago)
    )
    return run


def assistant_replies(conversation_id: Any) -> list[str]:
    return list(
        Message.objects.filter(conversation_id=conversation_id, sender=Sender.ASSISTANT)
        .order_by("seq")
        .values_list("text", flat=True)
    )


# --- The sweep -------------------------------------------------------------------------------------


def test_a_turn_held_by_a_dead_worker_is_released_and_then_answered_once(db):
    ttl = settings.TALIA_WORKER_HEARTBEAT_TTL_S
    received = inbox.receive("web", "session-recover-01", "Hola")
    held_by(received, DEAD, claimed_seconds_ago=ttl * 2)
    heartbeat(DEAD, seconds_ago=ttl + 5)  # it stopped beating: killed

    assert turns.release_abandoned_runs() == [received.message.pk]

    run = AssistantRun.objects.get(trigger_message=received.message)
    assert (run.status, run.worker) == (AssistantRun.Status.PENDING, "")
    assert DEAD in run.error
    assert turns.release_abandoned_runs() == []  # released once
    answered = turns.run_turn(received.message.pk)
    assert answered is not None and answered.status == AssistantRun.Status.COMPLETED
    assert answered.worker == workers.identity()
    assert turns.run_turn(received.message.pk) is None  # the original task, redelivered late
    assert len(assistant_replies(received.conversation.pk)) == 1


def test_a_turn_whose_worker_never_beat_is_released_too(db):
    received = inbox.receive("web", "session-recover-02", "Hola")
    held_by(received, "never-seen:1:00000000", claimed_seconds_ago=settings.TALIA_WORKER_HEARTBEAT_TTL_S * 2)

    assert turns.release_abandoned_runs() == [received.message.pk]


def test_a_turn_held_by_a_live_worker_is_left_alone(db):
    received = inbox.receive("web", "session-recover-03", "Hola")
    held_by(received, LIVE, claimed_seconds_ago=settings.TALIA_WORKER_HEARTBEAT_TTL_S * 4)  # a slow turn
    heartbeat(LIVE, seconds_ago=1)

    assert turns.release_abandoned_runs() == []
    assert AssistantRun.objects.get(trigger_message=received.message).status == AssistantRun.Status.RUNNING


def test_a_turn_claimed_moments_ago_is_left_alone_even_before_its_worker_beats(db):
    received = inbox.receive("web", "session-recover-04", "Hola")
    held_by(received, DEAD, claimed_seconds_ago=1)

    assert turns.release_abandoned_runs() == []


def test_nothing_is_released_when_liveness_cannot_be_read(db, settings):
    received = inbox.receive("web", "session-recover-05", "Hola")
    held_by(received, DEAD, claimed_seconds_ago=settings.TALIA_WORKER_HEARTBEAT_TTL_S * 2)
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens: unknown is not dead

    with pytest.raises(Exception, match="(?i)connect"):
        turns.release_abandoned_runs()

    assert AssistantRun.objects.get(trigger_message=received.message).status == AssistantRun.Status.RUNNING


@pytest.mark.django_db(transaction=True)
def test_the_recovery_task_queues_the_released_turn_and_a_worker_answers_it():
    purge_task_queue()
    received = inbox.receive("web", "session-recover-06", "Hola")
    purge_task_queue()  # only the recovery will queue this turn
    held_by(received, DEAD, claimed_seconds_ago=settings.TALIA_WORKER_HEARTBEAT_TTL_S * 2)

    assert recover_abandoned_work() == 1

    with running_worker():
        run = wait_for(
            lambda: AssistantRun.objects.filter(trigger_message=received.message, finished_at__isnull=False).first()
        )
    assert run.status == AssistantRun.Status.COMPLETED
    assert len(assistant_replies(received.conversation.pk)) == 1


def test_an_execution_that_lost_its_turn_stores_no_reply(transactional_db, model_engine):
    """A worker presumed dead (frozen, say) wakes up after the recovery answered: it must store nothing."""
    model_engine.script(slow(3, text("Late reply from the frozen worker")), text("Reply from the recovery"))
    received = inbox.receive("web", "session-recover-07", "Hola")
    stale_result: list[Any] = []
    stale = threading.Thread(target=lambda: stale_result.append(turns.run_turn(received.message.pk)))
    stale.start()
    try:
        wait_for(lambda: len(model_engine.requests_to(RESPONSES)) == 1)
        # Its heartbeat goes stale: the sweep hands the turn to another execution, which answers.
        AssistantRun.objects.filter(trigger_message=received.message).update(
            worker=DEAD, started_at=timezone.now() - timedelta(minutes=1)
        )
        assert turns.release_abandoned_runs() == [received.message.pk]
        recovered = turns.run_turn(received.message.pk)
    finally:
        stale.join(timeout=30)

    assert stale_result == [None]
    assert recovered is not None and recovered.status == AssistantRun.Status.COMPLETED
    assert assistant_replies(received.conversation.pk) == ["Reply from the recovery"]
    stored = AssistantRun.objects.select_related("reply_message").get(pk=recovered.pk)
    assert stored.reply_message is not None and stored.reply_message.text == "Reply from the recovery"


def sending(holder: str, *, claimed_seconds_ago: float) -> Message:
    """An outbound WhatsApp message whose first attempt `holder` claimed that long ago and never finished."""
    _, conversation = inbox.ensure_conversation("whatsapp", "+34600111222")
    message = inbox.send(conversation, "¡Hola!", sender=Sender.ASSISTANT)
    Message.objects.filter(pk=message.pk).update(
        delivery_attempts=1,
        delivery_worker=holder,
        delivery_queued_at=timezone.now() - timedelta(seconds=claimed_seconds_ago),
    )
    return message


def test_a_delivery_whose_sender_died_is_released_and_sent(db, whatsapp):
    message = sending(DEAD, claimed_seconds_ago=settings.TALIA_WORKER_HEARTBEAT_TTL_S * 2)
    heartbeat(DEAD, seconds_ago=settings.TALIA_WORKER_HEARTBEAT_TTL_S + 5)

    assert release_abandoned_deliveries() == [str(message.pk)]
    assert release_abandoned_deliveries() == []
    deliver_message.apply(args=(str(message.pk),))

    message.refresh_from_db()
    assert (message.delivery_status, message.delivery_attempts, message.delivery_worker) == (
        DeliveryStatus.SENT,
        2,
        "",
    )
    assert whatsapp.sent == ["¡Hola!"]


def test_a_delivery_being_sent_by_a_live_worker_is_left_alone(db, whatsapp):
    message = sending(LIVE, claimed_seconds_ago=settings.TALIA_WORKER_HEARTBEAT_TTL_S * 2)
    heartbeat(LIVE, seconds_ago=1)

    assert release_abandoned_deliveries() == []
    assert Message.objects.get(pk=message.pk).delivery_worker == LIVE


# --- A real worker killed with SIGKILL -------------------------------------------------------------

WORKER_READY_TIMEOUT_S = 60
# The bound: a killed worker's turn is answered within 60 s of a worker being available again.
RECOVERY_BOUND_S = 60


class WorkerProcess:
    """`celery -A talia worker` (prefork, one child) in a process group of its own, so it can be killed whole."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "talia", "worker", "--pool=prefork", "--concurrency=1",
                 "--loglevel=INFO", f"--hostname={name}", "--without-mingle", "--without-gossip"],
                cwd=BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> float:
        """Wait until the worker reports alive (its /health heartbeat); when that was, by time.monotonic()."""

        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"worker {self.name} exited with {self.process.returncode}:\n{self.log()}")
            return get_redis().zscore(workers_key(), self.name) is not None

        wait_for(ready, timeout=WORKER_READY_TIMEOUT_S, interval=0.2)
        return time.monotonic()

    def kill(self) -> None:
        """SIGKILL to the main process and its pool children at once: nothing gets to clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(transactional_db, tmp_path) -> Iterator[Any]:
    purge_task_queue()  # tasks left by earlier tests point at rows that no longer exist
    started: list[WorkerProcess] = []

    def start(name: str, **env: str) -> WorkerProcess:
        worker = WorkerProcess(
            name, {**server_env(settings, connection.settings_dict), **env}, tmp_path / f"{name}.log"
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.mark.fault
@pytest.mark.timeout(240)
def test_a_turn_whose_worker_is_killed_is_answered_once_after_a_worker_is_back(start_worker, model_engine, listen):
    model_engine.script(slow(120, text("Never sent: the worker dies first")), text("Here is your answer"))
    first = start_worker("fault-first@localhost")
    first.wait_ready()
    received = inbox.receive("web", "session-fault-kill-01", "Hola, ¿me ayudas?")
    message_id = received.message.pk
    visitor = listen(received.conversation.group_name)  # what the visitor's widget would be pushed

    # Mid-turn: claimed, and the model call on its way.
    wait_for(lambda: len(model_engine.requests_to(RESPONSES)) == 1, timeout=60)
    held = AssistantRun.objects.get(trigger_message_id=message_id)
    assert held.status == AssistantRun.Status.RUNNING
    first.kill()

    second = start_worker("fault-second@localhost")
    available_at = second.wait_ready()
    run = wait_for(
        lambda: AssistantRun.objects.filter(trigger_message_id=message_id, finished_at__isnull=False).first(),
        timeout=max(1.0, RECOVERY_BOUND_S - (time.monotonic() - available_at)),
        interval=0.2,
    )

    assert run.status == AssistantRun.Status.COMPLETED
    assert run.worker not in ("", held.worker)
    assert assistant_replies(received.conversation.pk) == ["Here is your answer"]
    assert run.reply_message.text == "Here is your answer"
    log = second.log()
    assert f"Turn for message {message_id} released: its worker {held.worker} is gone" in log
    assert "Recovered 1 turn(s) and 0 delivery(ies) from dead workers" in log

    # The killed worker's own task message comes back late (here: now): it finds the turn done.
    run_assistant_turn.delay(str(message_id))
    wait_for(lambda: f"Turn for message {message_id}: nothing to do" in second.log(), timeout=30)
    assert assistant_replies(received.conversation.pk) == ["Here is your answer"]
    assert AssistantRun.objects.filter(trigger_message_id=message_id).count() == 1
    assert AssistantRun.objects.get(pk=run.pk).finished_at == run.finished_at  # done once, not again
    assert len(model_engine.requests_to(RESPONSES)) == 2
    pushed = []
    while (event := visitor.receive(timeout=2)) is not None:
        if event["type"] == "message.new" and event["message"]["sender"] == Sender.ASSISTANT:
            pushed.append(event["message"]["text"])
    assert pushed == ["Here is your answer"]
    assert "Traceback" not in second.log()


@pytest.mark.fault
def test_a_turn_slower_than_the_heartbeat_ttl_is_not_taken_from_its_live_worker(start_worker, model_engine):
    """The prefork child running the turn beats for itself while its parent's sweep runs: nothing is released."""
    ttl = 5  # the smallest allowed: the turn below outlasts it and a few sweeps
    model_engine.script(slow(ttl * 3, text("Worth the wait")))
    worker = start_worker("fault-slow@localhost", TALIA_WORKER_HEARTBEAT_TTL_S=str(ttl))
    worker.wait_ready()
    received = inbox.receive("web", "session-fault-slow-01", "Hola")

    run = wait_for(
        lambda: AssistantRun.objects.filter(trigger_message=received.message, finished_at__isnull=False).first(),
        timeout=90,
        interval=0.2,
    )

    assert run.status == AssistantRun.Status.COMPLETED
    assert assistant_replies(received.conversation.pk) == ["Worth the wait"]
    assert len(model_engine.requests_to(RESPONSES)) == 1
    assert "released" not in worker.log()
