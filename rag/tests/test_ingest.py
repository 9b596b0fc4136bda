"""The ingest pipeline against a real site on 127.0.0.1, through the real Celery worker and Postgres."""

from __future__ import annotations

import io
import json
import math
import re
import time

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from rag import ingest
from rag.models import Chunk, Document, IngestJob, IngestStatus, KnowledgeSource
from rag.tests import many_pages
from rag.tests.site import Response, page, redirect, robots, serve_site, sitemap
from talia.testing.plugin import wait_for

# The test sites run on 127.0.0.1, which the crawler refuses unless allowed.
pytestmark = pytest.mark.usefixtures("allow_local_sites")

PRICES = (
    "<main><h1>Precios</h1><h2>Limpieza</h2><p>Una limpieza dental cuesta 45 euros e incluye revisión.</p>"
    "<h2>Blanqueamiento</h2><p>El blanqueamiento en clínica cuesta 290 euros.</p></main>"
)


def demo_routes() -> dict[str, Response]:
    return {
        "/robots.txt": robots("User-agent: *\nDisallow: /private/\n"),
        "/sitemap.xml": sitemap(
            "{site}/", "{site}/implants", "{site}/prices", "{site}/old-prices", "{site}/broken", "{site}/brochure.pdf"
        ),
        "/": page(
            "Clínica Demo",
            "<nav><a href='/hours'>Horario</a> <a href='/private/notes'>Interno</a> <a href='/copy-of-prices'>"
            "Tarifas</a></nav><main><h1>Bienvenidos a la Clínica Demo</h1><p>Somos una clínica dental en "
            "Valencia con veinte años de experiencia cuidando sonrisas.</p></main>",
            "es",
        ),
        "/implants": page(
            "Implantes",
            "<main><h1>Implantes dentales</h1><p>Un implante dental de titanio se coloca en una sola cita de "
            "una hora y la corona definitiva llega a los tres meses.</p></main>",
            "es",
        ),
        "/prices": page("Precios", PRICES, "es"),
        "/copy-of-prices": page("Precios", PRICES, "es"),  # the same page under another URL
        "/old-prices": redirect("/prices"),
        "/hours": page(
            "Horario",
            "<main><h1>Horario</h1><p>Abrimos de lunes a viernes de 9:00 a 20:00 y los sábados por la "
            "mañana.</p></main>",
            "es",
        ),
        "/broken": Response(status=500, content_type="text/plain", body="oops"),
        "/brochure.pdf": Response(content_type="application/pdf", body=b"%PDF-1.4 not html"),
        "/private/notes": page("Interno", "<main><p>No debería leerse.</p></main>", "es"),
    }


def logged(job: IngestJob) -> dict[str, dict[str, str]]:
    return {entry["url"].split(":", 2)[-1].split("/", 1)[-1]: entry for entry in job.log}


def run_now(site_url: str, **options: object) -> IngestJob:
    job = ingest.start_ingest(site_url, enqueue=False, **options)  # type: ignore[arg-type]
    return ingest.run_ingest(str(job.pk))


def test_a_site_is_ingested_through_the_worker(celery_worker):
    with serve_site(demo_routes()) as site:
        job = ingest.start_ingest(site.url("/"))
        job = wait_for(lambda: IngestJob.objects.filter(pk=job.pk, status=IngestStatus.COMPLETED).first())

    documents = {document.url.removeprefix(site.base_url): document for document in Document.objects.all()}
    assert set(documents) == {"/", "/implants", "/prices", "/hours"}
    assert documents["/prices"].language == "es" and documents["/prices"].title == "Precios"
    assert site.requests["/private/notes"] == 0  # robots.txt said no
    assert site.requests["/robots.txt"] == 1 and site.requests["/sitemap.xml"] == 1
    entries = logged(job)
    assert entries["copy-of-prices"]["reason"].startswith("same content as")
    assert entries["broken"]["outcome"] == "failed" and "500" in entries["broken"]["reason"]
    assert entries["brochure.pdf"]["outcome"] == "skipped" and "pdf" in entries["brochure.pdf"]["reason"]
    assert entries["private/notes"]["reason"] == "robots.txt disallows"
    assert (job.fetched, job.indexed, job.failed) == (5, 4, 1)
    assert job.chunks == Chunk.objects.count() > 0
    assert not Chunk.objects.filter(search_vector__isnull=True).exists()
    assert set(Chunk.objects.values_list("search_config", flat=True)) == {"spanish"}
    source = KnowledgeSource.objects.get()
    assert (source.status, source.last_job_id) == (IngestStatus.COMPLETED, job.pk)


def test_a_second_run_reindexes_what_changed_and_drops_what_disappeared(db):
    routes = demo_routes()
    with serve_site(routes) as site:
        first = run_now(site.url("/"))
        implants_before = list(Chunk.objects.filter(document__url=site.url("/implants")).values_list("id", flat=True))
        routes["/implants"] = page(
            "Implantes",
            "<main><h1>Implantes dentales</h1><p>Ahora colocamos implantes de zirconio, sin metal.</p></main>",
            "es",
        )
        routes["/"] = page("Clínica Demo", "<main><h1>Bienvenidos</h1><p>Clínica dental en Valencia.</p></main>", "es")
        del routes["/hours"]  # no longer linked, and gone

        second = run_now(site.url("/"))

    assert first.status == second.status == IngestStatus.COMPLETED
    urls = set(Document.objects.values_list("url", flat=True))
    assert site.url("/hours") not in urls and second.removed == 1
    implants = Document.objects.get(url=site.url("/implants"))
    assert "zirconio" in " ".join(implants.chunks.values_list("text", flat=True))
    assert not Chunk.objects.filter(pk__in=implants_before).exists()
    assert logged(second)["prices"]["reason"] == "unchanged"
    assert second.indexed == 2  # the home page and the implants page changed; prices did not


def test_one_job_at_a_time_per_site(db):
    first = ingest.start_ingest("https://clinica.example/", enqueue=False)
    again = ingest.start_ingest("https://clinica.example", max_pages=5, enqueue=False)

    assert again.pk == first.pk
    assert KnowledgeSource.objects.get().max_pages == 5


def test_the_command_ingests_with_progress(db):
    out = io.StringIO()
    with serve_site(demo_routes()) as site:
        call_command("ingest_site", site.url("/"), "--max-pages", "3", stdout=out)

    output = out.getvalue()
    assert "Ingested" in output and "3 fetched" in output
    assert "[" in output and "/3 pages" in output  # the progress bar
    assert Document.objects.count() <= 3


# --- The API ------------------------------------------------------------------------------------------


@pytest.fixture
def staff(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))
    return client


def post(client: Client, body: object):
    return client.post("/api/rag/ingest", data=json.dumps(body), content_type="application/json")


def test_staff_start_an_ingest_and_follow_it(celery_worker, staff):
    with serve_site(demo_routes()) as site:
        started = post(staff, {"site": site.url("/"), "max_pages": 10})
        assert started.status_code == 202
        job_id = started.json()["job"]["id"]
        wait_for(lambda: staff.get(f"/api/rag/ingest/{job_id}").json()["job"]["status"] == "completed")

    job = staff.get(f"/api/rag/ingest/{job_id}").json()["job"]
    assert (job["indexed"], job["failed"]) == (4, 1)
    found = staff.get("/api/rag/search", {"q": "¿Cuánto cuesta una limpieza?"}).json()["results"]
    assert found[0]["url"] == site.url("/prices")
    assert "45 euros" in found[0]["snippet"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "site"), ({"site": "not a url"}, "site"), ({"site": "https://a.example/", "max_pages": 0}, "max_pages")],
)
def test_a_bad_ingest_request_says_what_is_wrong(staff, body, field):
    response = post(staff, body)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not IngestJob.objects.exists()


def test_only_staff_may_use_the_knowledge_base_api(db, django_user_model):
    agent = Client()
    agent.force_login(django_user_model.objects.create_user("ana"))

    for client in (Client(), agent):
        assert post(client, {"site": "https://a.example/"}).status_code == 403
        assert client.get("/api/rag/search", {"q": "precio"}).status_code == 403
    assert not IngestJob.objects.exists()


def test_search_needs_a_query(staff):
    response = staff.get("/api/rag/search")

    assert response.status_code == 400
    assert "q" in response.json()["error"]["fields"]


def test_an_unknown_job_is_a_404(staff):
    response = staff.get("/api/rag/ingest/8a0c8d4e-7b0e-4f7e-9a53-0b9a1b2c3d4e")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- Batched writes -----------------------------------------------------------------------------------


def test_statements_per_page_are_bounded(db):
    pages = 60
    with serve_site(many_pages.routes(pages)) as site:
        job = ingest.start_ingest(site.url("/"), max_pages=pages, enqueue=False)
        started = time.monotonic()
        with CaptureQueriesContext(connection) as queries:
            job = ingest.run_ingest(str(job.pk))
        elapsed = time.monotonic() - started

    assert (job.status, job.indexed, job.chunks) == (IngestStatus.COMPLETED, pages, Chunk.objects.count())
    assert Document.objects.count() == pages
    assert not Chunk.objects.filter(search_vector__isnull=True).exists()
    statements = [query["sql"] for query in queries.captured_queries]
    # Pages are written in batches: a few statements per batch, not a dozen per page.
    batches = math.ceil(pages / ingest.WRITE_BATCH) + math.ceil(elapsed / ingest.PROGRESS_EVERY_S)
    assert len(statements) <= 12 + 7 * batches, statements
    assert len(statements) < pages  # fewer than one per page
    # The job's row: its figures once a second at most, plus the start and the end.
    job_writes = [sql for sql in statements if sql.startswith('UPDATE "rag_ingestjob"')]
    assert 2 <= len(job_writes) <= 2 + math.floor(elapsed / ingest.PROGRESS_EVERY_S), job_writes
    chunk_inserts = [sql for sql in statements if re.match(r'\s*INSERT INTO "?rag_chunk"?\s', sql)]
    assert 1 <= len(chunk_inserts) <= batches
    assert not [sql for sql in statements if sql.startswith('UPDATE "rag_chunk"')]  # vectors built on insert


def test_a_progress_callback_sees_every_page_without_reading_the_job_again(db):
    seen: list[int] = []
    with serve_site(many_pages.routes(12)) as site:
        job = ingest.start_ingest(site.url("/"), max_pages=12, enqueue=False)
        with CaptureQueriesContext(connection) as queries:
            job = ingest.run_ingest(str(job.pk), progress=lambda job: seen.append(job.fetched))

    assert seen[:12] == list(range(1, 13)) and job.fetched == 12
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "rag_ingestjob"')][1:]
    assert IngestJob.objects.get(pk=job.pk).log == job.log and len(job.log) == 12
