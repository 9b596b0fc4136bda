"""GET /metrics (talia/metrics_scrape.py): who may scrape, and the families real traffic moves.

The counters live in this process's registry here (the in-process Celery worker shares it), so each test
compares a scrape after its traffic with one before. The multiprocess merge is checked with a separate
process writing its values the way a Celery worker does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from channels_whatsapp.tests import conftest as whatsapp
from channels_whatsapp.tests.conftest import Twilio, text
from conversations.models import AssistantRun, ToolCall
from talia import observability
from talia.env import BASE_DIR
from talia.testing.browser import free_port, http_get, server_env
from talia.testing.plugin import purge_task_queue, wait_for

fake_twilio = whatsapp.fake_twilio  # the WhatsApp tests' fixture: a FakeTwilio with the settings pointed at it

TOKEN = "metrics-token-0123456789"


def scrape(client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def say(client, content: str, session: str = "metrics-session-0001"):
    body = {"session_id": session, "author": "user", "content": content}
    return client.post("/api/webchat/messages", data=json.dumps(body), content_type="application/json")


def test_a_web_chat_turn_a_tool_call_and_a_webhook_ack_are_counted(client, celery_worker, settings, fake_twilio):
    settings.TALIA_REPLY_WAIT_S = 20
    before = scrape(client)

    response = say(client, "Quiero hablar con una persona, por favor")
    assert response.status_code == 200, response.content
    ack = Twilio(client, fake_twilio).message(text("Hola desde WhatsApp"))
    assert ack.status_code == 200
    forged = Twilio(client, fake_twilio).message(text("Hola"), signature="bm90IGEgc2lnbmF0dXJl")
    assert forged.status_code == 403
    after = scrape(client)

    run = AssistantRun.objects.filter(conversation__channel="web").get()
    assert run.engine == "offline"
    assert value(after, "talia_http_requests_total", view="webchat:messages", status="2xx") == 1 + value(
        before, "talia_http_requests_total", view="webchat:messages", status="2xx"
    )
    bucket = {"view": "webchat:messages"}
    assert value(after, "talia_http_request_duration_seconds_count", **bucket) > value(
        before, "talia_http_request_duration_seconds_count", **bucket
    )
    turn = {"engine": "offline", "outcome": run.status}
    assert value(after, "talia_assistant_turns_total", **turn) >= 1 + value(
        before, "talia_assistant_turns_total", **turn
    )
    assert value(after, "talia_assistant_turn_duration_seconds_count", **turn) >= 1 + value(
        before, "talia_assistant_turn_duration_seconds_count", **turn
    )
    call = ToolCall.objects.filter(run=run).first()
    assert call is not None, "the offline engine called no tool for a handoff request"
    tool = {"tool": call.name, "outcome": call.status}
    assert value(after, "talia_tool_calls_total", **tool) == 1 + value(before, "talia_tool_calls_total", **tool)
    acks = {"channel": "whatsapp", "route": "webhook"}
    assert value(after, "talia_webhook_acks_total", **acks) == 1 + value(before, "talia_webhook_acks_total", **acks)
    refusals = {"channel": "whatsapp", "status": "4xx"}
    assert value(after, "talia_webhook_refusals_total", **refusals) == 1 + value(
        before, "talia_webhook_refusals_total", **refusals
    )
    # Read at scrape time: the handoff the visitor asked for is waiting, nobody is online.
    assert value(after, "talia_handoff_queue_length") == 1
    assert value(after, "talia_handoff_queue_longest_wait_seconds") >= 0
    assert value(after, "talia_agents_online") == 0
    assert value(after, "talia_assistant_turns_pending") >= 0
    for queue in settings.TALIA_QUEUES.values():  # turns, deliveries, ingest, analysis
        assert ("talia_celery_queue_length", (("queue", queue),)) in after
    for source in ("database", "presence", "celery"):
        assert value(after, "talia_scrape_source_up", source=source) == 1


def test_provider_errors_retries_and_delivery_failures_are_exposed(db, client):
    from talia import metrics

    class Refused(Exception):
        status = 429
        retryable = True

    before = scrape(client)
    metrics.provider_failed("openai", Refused(), attempt=0)
    metrics.delivery_failed("whatsapp", final=True)
    after = scrape(client)

    labels = {"engine": "openai", "status": "429", "retried": "true"}
    assert value(after, "talia_provider_errors_total", **labels) == 1 + value(
        before, "talia_provider_errors_total", **labels
    )
    assert value(after, "talia_provider_retries_total", engine="openai") == 1 + value(
        before, "talia_provider_retries_total", engine="openai"
    )
    failures = {"channel": "whatsapp", "final": "true"}
    assert value(after, "talia_delivery_failures_total", **failures) == 1 + value(
        before, "talia_delivery_failures_total", **failures
    )


def test_other_addresses_and_a_wrong_token_are_refused(db, client, settings):
    settings.TALIA_METRICS_ALLOWED_NETWORKS = []  # the test client is 127.0.0.1, allowed by default
    settings.TALIA_METRICS_TOKEN = TOKEN

    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong-token-0123456789"}, {"HTTP_AUTHORIZATION": TOKEN}):
        response = client.get("/metrics", **headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"

    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_an_allowed_network_is_matched_on_the_client_address(db, client, settings):
    settings.TALIA_METRICS_TOKEN = ""
    from ipaddress import ip_network

    settings.TALIA_METRICS_ALLOWED_NETWORKS = [ip_network("10.0.0.0/8")]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.5").status_code == 403
    # X-Forwarded-For is believed only from a trusted proxy.
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.5", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 403
    settings.TALIA_TRUSTED_PROXIES = ["192.168.1.5"]
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.5", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 200


WORKER = """
import django
django.setup()
from talia import metrics
metrics.tool_called("search_knowledge", True, "ok")
metrics.tool_called("search_knowledge", True, "ok")
metrics.turn_finished("offline", "completed", 120)
"""


def test_counts_of_another_process_reach_the_scrape(db, client, settings, tmp_path: Path, monkeypatch):
    """Multiprocess mode: a worker process writes its values under its role's directory; the web
    process's scrape merges every role's directory under TALIA_METRICS_DIR."""
    base = tmp_path / "metrics"
    worker_dir = observability.metrics_dir_for(base, "worker-turns", wipe=True)
    web_dir = observability.metrics_dir_for(base, "web", wipe=True)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(worker_dir)}
    for _ in range(2):  # two worker processes, as a prefork pool has
        subprocess.run([sys.executable, "-c", WORKER], env=env, cwd=BASE_DIR, check=True, timeout=120)
    settings.TALIA_METRICS_DIR = base
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(web_dir))

    samples = scrape(client)

    assert value(samples, "talia_tool_calls_total", tool="search_knowledge", outcome="ok") == 4
    assert value(samples, "talia_assistant_turns_total", engine="offline", outcome="completed") == 2
    assert value(samples, "talia_assistant_turn_duration_seconds_count", engine="offline", outcome="completed") == 2
    # Scrape-time gauges are still there.
    assert value(samples, "talia_scrape_source_up", source="database") == 1


def test_a_role_gets_a_fresh_metrics_directory_of_its_own(settings, tmp_path: Path, monkeypatch):
    settings.TALIA_METRICS_DIR = tmp_path
    settings.TALIA_WORKER_QUEUES = ["turns"]
    stale = tmp_path / "worker-turns" / "counter_123.db"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)

    observability.prepare_metrics_env("worker")

    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "worker-turns")
    assert not stale.exists()


def parse(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


@pytest.mark.timeout(240)
def test_the_web_role_scrape_shows_what_the_worker_role_counted(transactional_db, settings, tmp_path: Path):
    """Deployed as on one host: `python -m talia web` and `python -m talia worker`, separate processes
    sharing TALIA_METRICS_DIR. A message posted to the web role is answered by the worker role (a prefork
    child), and the web role's /metrics shows the turn the worker counted."""
    from django.db import connection

    purge_task_queue()
    env = {**server_env(settings, connection.settings_dict), "TALIA_METRICS_DIR": str(tmp_path / "metrics")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    port = free_port()
    roles = {
        "web": {**env, "HOST": "127.0.0.1", "PORT": str(port)},
        "worker": {**env, "TALIA_WORKER_QUEUES": "turns", "TALIA_WORKER_CONCURRENCY": "1"},
    }
    processes = []
    for role, role_env in roles.items():
        log = open(tmp_path / f"{role}.log", "wb")  # noqa: SIM115  (closed with the process below)
        command = [sys.executable, "-m", "talia", role]
        processes.append((subprocess.Popen(command, cwd=BASE_DIR, env=role_env, stdout=log, stderr=log), log))
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert all(p.poll() is None for p, _ in processes), "a role exited"
            try:
                return http_get(f"{url}/health/live", timeout=2)[0] == 200
            except OSError:
                return False

        wait_for(up, timeout=90)
        body = {"session_id": "metrics-roles-0001", "author": "user", "content": "Hola"}
        request = urllib.request.Request(  # noqa: S310  (our own http:// URL)
            f"{url}/api/webchat/messages",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  (our own http:// URL)
            assert response.status in (200, 202)

        def turn_counted() -> dict | None:
            status, scraped = http_get(f"{url}/metrics")
            assert status == 200, scraped
            samples = parse(scraped)
            return (
                samples
                if value(samples, "talia_assistant_turns_total", engine="offline", outcome="completed")
                else None
            )

        samples = wait_for(turn_counted, timeout=90, interval=0.5)
        assert value(samples, "talia_http_requests_total", view="webchat:messages", status="2xx") == 1
        assert value(samples, "talia_assistant_turn_duration_seconds_count", engine="offline", outcome="completed") == 1
        assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == ["web", "worker-turns"]
    finally:
        for process, log in processes:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
        for role in roles:
            print(f"--- {role} ---\n{(tmp_path / f'{role}.log').read_text(errors='replace')[-3000:]}")


def test_a_scrape_costs_two_queries_whatever_the_history(db, client, django_assert_num_queries):
    scrape(client)  # warm: connections and caches
    with django_assert_num_queries(2):  # the handoff queue, the pending turns
        response = client.get("/metrics")
    assert response.status_code == 200
