"""`events`: the outbox publisher's throughput and lag. N events (`-n`, spread over conversations of ten
messages) are recorded by the real inbox, then the publisher (in this process, `publisher.run_pass` as
`manage.py publish_events` runs it) hands them to the Redis stream and to a local webhook receiver.

Figures: events published per second (all sinks delivered / wall time of the publishing loop) and the
publish lag (`occurred_at` → `delivered_at`) p50/p99 per sink. The events are recorded before the
publisher starts, so the lag includes the wait in the outbox: read it as "time to drain a burst of N".

Then the steady state, as deployed: the real `manage.py publish_events` process (its own poll interval,
TALIA_EVENTS_POLL_S, default 0.5 s) running while visitors' messages are recorded at a steady rate
(BENCH_EVENTS_RATE messages/s, default 20, for BENCH_EVENTS_S seconds, default 10); the lag per sink is
then what a consumer waits for an event after it happened.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.report import Report, Row, latency, ms

ROOT = Path(__file__).resolve().parent.parent


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def bench_events(runs: int, report: Report) -> None:
    from django.conf import settings

    from conversations import inbox
    from conversations.models import Event
    from talia.integrations import publisher
    from talia.integrations.models import EventDelivery, WebhookEndpoint
    from talia.redis_client import get_redis

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stream = f"{settings.REDIS_PREFIX}:bench-events:{secrets.token_hex(4)}"
    settings.TALIA_EVENTS_REDIS_STREAM = stream
    publisher.run_pass(batch_size=5000)  # whatever waited in the outbox before this run
    endpoint = WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{server.server_address[1]}/", description="bench")
    try:
        run = secrets.token_hex(4)
        first = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
        for i in range(max(1, runs // 2)):  # each message: message_received (+ conversation_opened for the first)
            inbox.receive("web", f"bench-events-{run}-{i // 10:04d}", "Hola", assistant_turn=False)
        ids = list(Event.objects.filter(id__gt=first).values_list("id", flat=True))
        start = time.perf_counter()
        while EventDelivery.objects.filter(event_id__in=ids, status="delivered").count() < 2 * len(ids):
            if not publisher.run_pass().more:
                time.sleep(0.01)
        elapsed = time.perf_counter() - start
        rate = len(ids) / elapsed
        print(f"events published to redis + webhook           n={len(ids):<5} {rate:8.1f} events/s")
        report.rows.append(
            Row(
                "events",
                "events published (Redis stream + webhook)",
                f"{rate:.1f}/s",
                figures={"n": len(ids), "events_per_s": rate},
            )
        )
        _report_lags(report, ids, endpoint.sink_key, "")
        _steady_state(report, stream, endpoint.sink_key)
    finally:
        EventDelivery.objects.filter(sink_key=endpoint.sink_key).delete()
        endpoint.delete()
        get_redis().delete(stream)
        server.shutdown()


def _steady_state(report: Report, stream: str, webhook_key: str) -> None:
    """The lag with the publisher running as its own process while events keep coming."""

    from conversations import inbox
    from conversations.models import Event
    from talia.integrations.models import EventDelivery

    rate = float(os.environ.get("BENCH_EVENTS_RATE", "20"))
    seconds = float(os.environ.get("BENCH_EVENTS_S", "10"))
    log_path = Path(os.environ["TALIA_VAR_DIR"]) / "bench-publish-events.log"
    # As `manage.py` runs it: without this process's TALIA_DATABASE_POOL=false (the command's default anyway).
    env = {**os.environ, "TALIA_EVENTS_REDIS_STREAM": stream, "PYTHONUNBUFFERED": "1"}
    env.pop("TALIA_DATABASE_POOL", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "publish_events"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        ready = time.monotonic() + 60
        while b"Publishing events every" not in log_path.read_bytes():  # started: Django set up, polling
            if time.monotonic() > ready or process.poll() is not None:
                raise RuntimeError(f"the publisher did not start; see {log_path}")
            time.sleep(0.05)
        run = secrets.token_hex(4)
        first = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            inbox.receive("web", f"bench-steady-{run}-{i // 10:04d}", "Hola", assistant_turn=False)
        ids = list(Event.objects.filter(id__gt=first).values_list("id", flat=True))
        deadline = time.monotonic() + 60
        while EventDelivery.objects.filter(event_id__in=ids, status="delivered").count() < 2 * len(ids):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the publisher did not deliver every event; see {log_path}")
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=30)
    _report_lags(report, ids, webhook_key, f", steady {rate:g} messages/s (publish_events process)")


def _report_lags(report: Report, ids: list[int], webhook_key: str, how: str) -> None:
    """Each sink's publish lag (event recorded → delivered) over the events `ids`."""
    from django.db.models import F

    from talia.integrations.models import EventDelivery

    for sink_key, label in (("redis-stream", "Redis stream"), (webhook_key, "webhook")):
        lags = [
            lag.total_seconds() * 1000
            for lag in EventDelivery.objects.filter(event_id__in=ids, sink_key=sink_key)
            .annotate(lag=F("delivered_at") - F("event__created"))
            .values_list("lag", flat=True)
        ]
        figures = latency(sorted(lags))
        work = f"publish lag to the {label}{how}"
        print(f"{work:<70} n={len(lags):<5} {ms(figures)}")
        report.rows.append(Row("events", work, ms(figures), figures=dict(figures)))
