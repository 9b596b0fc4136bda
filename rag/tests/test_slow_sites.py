"""Slow or hostile sites cannot starve conversations: deadlines per fetch and per job, a queue of their own.

The hostile peer is a local site whose page drips one byte a second: each read succeeds within the
per-read timeout, so only a total deadline ends the fetch.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.test import Client

from conversations.models import Message, Sender
from rag import ingest
from rag.crawl import CrawlConfig, PageResult, crawl
from rag.models import Document, IngestJob, IngestStatus
from rag.tests.site import page, robots, serve_site
from talia.celery import app
from talia.testing.plugin import purge_task_queue, running_worker, wait_for

pytestmark = pytest.mark.fault

DRIP = dataclasses.replace(page("Despacio", "<main><p>Esta página llega letra a letra.</p></main>", "es"), drip_s=1.0)
ROUTES = {
    "/": page("Inicio", "<main><h1>Inicio</h1><p>Clínica dental en Valencia.</p></main>"
              "<a href='/drip'>Despacio</a> <a href='/fine'>Horario</a>", "es"),
    "/drip": DRIP,
    "/fine": page("Horario", "<main><h1>Horario</h1><p>Abrimos de lunes a viernes.</p></main>", "es"),
}  # fmt: skip


def crawl_paths(site_url: str, host: str, **options: float) -> dict[str, PageResult]:
    """Crawl with `host` allowed; results keyed by path."""
    results: dict[str, PageResult] = {}

    def on_page(result: PageResult) -> None:
        results[result.url.removeprefix(site_url.rstrip("/"))] = result

    crawl(CrawlConfig(start_url=site_url, allow_hosts=(host,), **options), on_page)  # type: ignore[arg-type]
    return results


def test_a_page_that_drips_is_abandoned_at_the_fetch_deadline():
    with serve_site(ROUTES) as site:
        # Each read succeeds well within timeout_s; only the total deadline can end this fetch.
        results = crawl_paths(site.url("/"), site.host, timeout_s=5.0, fetch_deadline_s=2.0)

    assert results["/drip"].outcome == "failed"
    assert results["/drip"].reason == "deadline: no complete answer within 2s"
    assert results["/fine"].outcome == "fetched" and results["/"].outcome == "fetched"


def test_a_robots_txt_that_drips_counts_as_unreachable():
    routes = ROUTES | {"/robots.txt": dataclasses.replace(robots("User-agent: *\nAllow: /\n"), drip_s=1.0)}
    with serve_site(routes) as site:
        results = crawl_paths(site.url("/"), site.host, timeout_s=5.0, fetch_deadline_s=2.0)

    assert [(path, result.reason) for path, result in results.items()] == [("/", "robots.txt unreachable")]
    assert site.requests["/"] == 0


def test_the_job_finishes_with_the_dripping_page_failed(celery_worker, allow_local_sites, settings):
    settings.TALIA_CRAWL_FETCH_DEADLINE_S = 2.0
    with serve_site(ROUTES) as site:
        job = ingest.start_ingest(site.url("/"))
        job = wait_for(lambda: IngestJob.objects.filter(pk=job.pk, status=IngestStatus.COMPLETED).first())

    (entry,) = [entry for entry in job.log if entry["url"] == site.url("/drip")]
    assert entry == {"url": site.url("/drip"), "outcome": "failed", "reason": "deadline: no complete answer within 2s"}
    assert (job.indexed, job.failed) == (2, 1)


def test_a_crawl_past_the_job_time_limit_stops_and_keeps_what_it_read(db, allow_local_sites, settings):
    settings.TALIA_CRAWL_FETCH_DEADLINE_S = 600
    settings.TALIA_INGEST_TIME_LIMIT_S = 5  # the dripping page needs minutes; the others, milliseconds
    with serve_site(ROUTES) as site:
        job = ingest.run_ingest(str(ingest.start_ingest(site.url("/"), enqueue=False).pk))

    assert job.status == IngestStatus.FAILED
    assert job.error.startswith("stopped at the time limit of 5s (2 fetched")
    assert set(Document.objects.values_list("url", flat=True)) == {site.url("/"), site.url("/fine")}


def test_ingest_and_analysis_have_a_queue_and_time_limits_of_their_own(settings):
    route = app.amqp.router.route
    assert route({}, "rag.tasks.ingest_source")["queue"].name == settings.TALIA_QUEUES["ingest"]
    assert route({}, "leads.tasks.analyse_conversations")["queue"].name == settings.TALIA_QUEUES["analysis"]
    assert route({}, "conversations.tasks.run_assistant_turn")["queue"].name == settings.CELERY_TASK_DEFAULT_QUEUE
    assert route({}, "conversations.tasks.deliver_message")["queue"].name == settings.TALIA_QUEUES["deliveries"]
    from leads.tasks import analyse_conversations as analysis_task
    from rag.tasks import ingest_source as ingest_task

    assert ingest_task.soft_time_limit and ingest_task.time_limit
    assert settings.TALIA_INGEST_TIME_LIMIT_S < ingest_task.soft_time_limit < ingest_task.time_limit
    assert analysis_task.soft_time_limit and analysis_task.time_limit
    assert settings.TALIA_ANALYSIS_TIME_LIMIT_S == analysis_task.soft_time_limit < analysis_task.time_limit


def test_a_visitor_is_answered_while_a_dripping_site_is_ingested(transactional_db, allow_local_sites, settings):
    """Two workers, one per queue, as `make run` and production run them; the drip lasts until released."""
    settings.TALIA_CRAWL_FETCH_DEADLINE_S = 600
    settings.TALIA_REPLY_WAIT_S = 0  # the reply is awaited below, from the database
    purge_task_queue()
    turns_queue, bulk_queue = settings.CELERY_TASK_DEFAULT_QUEUE, settings.TALIA_QUEUES["ingest"]
    with (
        serve_site(ROUTES) as site,
        running_worker([turns_queue], name="turns"),
        running_worker([bulk_queue], name="bulk", event_loop=False),
    ):
        try:
            job = ingest.start_ingest(site.url("/"))
            wait_for(lambda: site.requests["/drip"] == 1)  # the bulk worker is now held by the dripping page

            body = {"session_id": "slow-site-visitor-01", "author": "user", "content": "Hola, ¿qué horario tenéis?"}
            sent = Client().post("/api/webchat/messages", json.dumps(body), content_type="application/json")
            assert sent.status_code == 202, sent.content
            conversation_id = sent.json()["metadata"]["conversation_id"]
            reply = wait_for(
                lambda: Message.objects.filter(conversation_id=conversation_id, sender=Sender.ASSISTANT).first()
            )

            assert reply.text
            assert IngestJob.objects.get(pk=job.pk).status == IngestStatus.RUNNING  # still held by the drip
        finally:
            site.released.set()
        wait_for(lambda: IngestJob.objects.filter(pk=job.pk, status=IngestStatus.COMPLETED).exists())
