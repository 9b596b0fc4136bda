"""Retrieval quality as counts: hit@3 of a question set on a site served locally and ingested for real.

Shared by `rag/tests/test_quality.py` (the regression floors) and `bench/run.py quality` (the figures).
A site is served on 127.0.0.1 by `rag/tests/site.py` and goes through the real crawler, extractor,
chunker and indexer; a question is a hit when its answering page is among the URLs of the first three
results of `retrieval.search` (with whatever embedding provider is configured; none in the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.test import Client

from rag import ingest, retrieval
from rag.demo_site import PAGES
from rag.tests.site import FakeSite, Response

TOP = 3


def demo_routes(host: str = "testserver") -> dict[str, Response]:
    """The demo site (`rag/demo_site.py`) rendered by Django (as `host`, one of ALLOWED_HOSTS), for `serve_site`."""
    client = Client()
    routes: dict[str, Response] = {}
    for path in ["/demo-site/sitemap.xml", *(f"/demo-site/{page}" for page in PAGES)]:
        response = client.get(path, HTTP_HOST=host)
        assert response.status_code == 200, path
        body = response.content.decode().replace(f"http://{host}", "{site}")
        routes[path] = Response(content_type=response["Content-Type"], body=body)
    return routes


def ingest_site(site: FakeSite, start: str) -> int:
    """Crawl and index `site` from `start` (a path) in this process; returns the pages indexed."""
    job = ingest.start_ingest(site.url(start), enqueue=False)
    job = ingest.run_ingest(str(job.pk))
    assert job.status == "completed", job.error
    return job.indexed


@dataclass
class Score:
    """hit@3 of one question set: how many questions found their page, and the misses."""

    asked: int = 0
    hits: int = 0
    misses: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (question, page, URLs found)

    def __str__(self) -> str:
        return f"{self.hits}/{self.asked}"


def search_urls(question: str) -> list[str]:
    """The page of each of TalIA's first three results."""
    return [hit.url for hit in retrieval.search(question, limit=TOP)]


def hits_at_3(
    site: FakeSite, questions: Iterable[tuple[str, str, str]], urls_of: Callable[[str], list[str]] = search_urls
) -> dict[str, Score]:
    """Locale -> hit@3 of `questions` (question, locale, path of the answering page) on `site`, the
    pages of the first three results coming from `urls_of` (TalIA's search unless told otherwise)."""
    scores: dict[str, Score] = {}
    for question, locale, path in questions:
        score = scores.setdefault(locale, Score())
        urls = urls_of(question)
        score.asked += 1
        if site.url(path) in urls:
            score.hits += 1
        else:
            score.misses.append((question, path, [url.removeprefix(site.base_url) for url in urls]))
    return scores
