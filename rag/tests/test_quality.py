"""Retrieval quality on the demo site: the questions of rag/tests/questions.py, hit@3, full text only.

The demo site is rendered by Django and served by a plain HTTP server on 127.0.0.1, so the real crawler,
extractor, chunker and indexer run over it.
"""

from __future__ import annotations

import pytest
from django.test import Client

from rag import ingest, retrieval
from rag.demo_site import PAGES
from rag.tests.questions import QUESTIONS, UNANSWERABLE
from rag.tests.site import Response, serve_site

# The test sites run on 127.0.0.1, which the crawler refuses unless allowed.
pytestmark = pytest.mark.usefixtures("allow_local_sites")

# How many questions must find their answering page among the first three results: never fewer than
# before the full-text search moved onto the GIN index (16 of the 18; both misses find nothing at all).
HITS_AT_3 = 16


@pytest.fixture
def demo_site(db):
    client = Client()
    routes: dict[str, Response] = {}
    for path in ["/demo-site/sitemap.xml", *(f"/demo-site/{page}" for page in PAGES)]:
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode().replace("http://testserver", "{site}")
        routes[path] = Response(content_type=response["Content-Type"], body=body)
    with serve_site(routes) as site:
        job = ingest.start_ingest(site.url("/demo-site/"), enqueue=False)
        assert ingest.run_ingest(str(job.pk)).indexed == len(PAGES)
        yield site


def test_the_answer_is_in_the_first_three_results(demo_site):
    misses = []
    for question, _locale, path in QUESTIONS:
        urls = [hit.url for hit in retrieval.search(question, limit=3)]
        if demo_site.url(path) not in urls:
            misses.append((question, path, urls))

    hits = len(QUESTIONS) - len(misses)
    assert hits >= HITS_AT_3, f"hit@3 = {hits} of {len(QUESTIONS)}; missed: {misses}"


@pytest.mark.parametrize(("question", "locale"), UNANSWERABLE)
def test_questions_the_site_does_not_answer_find_nothing(demo_site, question, locale):
    assert retrieval.search(question) == []
