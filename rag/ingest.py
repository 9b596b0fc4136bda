"""The ingest pipeline: crawl a source, index what changed, skip what did not, drop what disappeared.

`start_ingest` registers a site and queues one job for it (a Celery task runs `run_ingest` after
commit); `manage.py ingest_site` runs the same pipeline in the foreground. The job's figures (fetched,
indexed, skipped, failed, removed) are written as each page completes, so the admin and the API show
progress while it runs.

A job is bounded in time: each fetch by TALIA_CRAWL_FETCH_DEADLINE_S, the crawl by
TALIA_INGEST_TIME_LIMIT_S (enforced here, whatever the worker pool), and the Celery task by a soft and
a hard limit just above it (settings' CELERY_TASK_ANNOTATIONS). Requests to non-public addresses are
refused (`rag.netguard`) unless the host is in TALIA_CRAWL_ALLOW_HOSTS: such pages fail, the job's
error says what was refused, documents from them are dropped, and a site whose own address is refused
fails its job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from rag import embeddings
from rag.chunking import chunk_sections
from rag.crawl import CrawlConfig, CrawlStats, PageResult, crawl, normalize_url
from rag.extract import ExtractedPage
from rag.models import EMBEDDING_COLUMN_DIMENSIONS, Chunk, Document, IngestJob, IngestStatus, KnowledgeSource
from talia.enqueue import after_commit as enqueue_after_commit

logger = logging.getLogger("talia.rag")

# Postgres text-search configurations by page language; anything else is indexed without stemming.
SEARCH_CONFIGS = {"es": "spanish", "en": "english"}
LOG_SIZE = 50
# A job still queued or running after this long lost its worker: a new request may start another.
STALE_AFTER = timedelta(hours=2)
GONE_STATUSES = frozenset({404, 410})

Progress = Callable[[IngestJob], None]


class IngestError(Exception):
    """The request cannot start an ingest (a URL that is not http(s), say)."""


def start_ingest(site: str, *, max_pages: int | None = None, user: Any = None, enqueue: bool = True) -> IngestJob:
    """Register `site` (or update its page budget) and queue a job, unless one is already under way.

    With `enqueue=False` the caller runs the job itself (`run_ingest`), as `manage.py ingest_site` does.
    """
    site_url = normalize_url(site)
    if site_url is None:
        raise IngestError("Give the site as an http(s) URL, like https://www.example.com/.")
    with transaction.atomic():
        source, created = KnowledgeSource.objects.select_for_update().get_or_create(
            site_url=site_url,
            defaults={
                "allowed_domain": urlsplit(site_url).hostname or "",
                "max_pages": max_pages or settings.TALIA_CRAWL_MAX_PAGES,
            },
        )
        if max_pages and not created and source.max_pages != max_pages:
            source.max_pages = max_pages
        under_way = source.jobs.filter(
            status__in=[IngestStatus.QUEUED, IngestStatus.RUNNING], created__gte=timezone.now() - STALE_AFTER
        ).first()
        if under_way is not None:
            source.save()
            return under_way
        job = IngestJob.objects.create(
            source=source, max_pages=max_pages or source.max_pages, requested_by=user if user else None
        )
        source.status, source.last_job = IngestStatus.QUEUED, job
        source.save()
        if enqueue:
            job_id = str(job.pk)
            enqueue_after_commit(
                "rag.tasks.ingest_source", job_id, what="ingest job", if_not_queued=partial(_not_queued, job_id)
            )
    return job


def _not_queued(job_id: str) -> None:
    IngestJob.objects.filter(pk=job_id, status=IngestStatus.QUEUED).update(
        status=IngestStatus.FAILED, error="The job could not be queued (is Redis up?). Try again."
    )


@dataclass
class _Run:
    job: IngestJob
    embedder: embeddings.Embedder | None
    progress: Progress | None
    kept: set[str] = field(default_factory=set)  # documents that stay: indexed or unchanged
    gone: set[str] = field(default_factory=set)  # answered 404/410, or duplicates of another page
    hashes: dict[str, str] = field(default_factory=dict)  # content hash -> the URL indexed with it


def run_ingest(job_id: str, progress: Progress | None = None) -> IngestJob:
    """Run a queued job to the end (once: a redelivered task finds it already taken)."""
    now = timezone.now()
    if not IngestJob.objects.filter(pk=job_id, status=IngestStatus.QUEUED).update(
        status=IngestStatus.RUNNING, started_at=now
    ):
        return IngestJob.objects.get(pk=job_id)
    job = IngestJob.objects.select_related("source").get(pk=job_id)
    source = job.source
    KnowledgeSource.objects.filter(pk=source.pk).update(status=IngestStatus.RUNNING)
    logger.info("Ingest %s of %s started (at most %d pages)", job.pk, source.site_url, job.max_pages)
    try:
        run = _Run(job, _checked_embedder(), progress)
        config = CrawlConfig(
            start_url=source.site_url,
            allowed_domain=source.allowed_domain,
            path_prefixes=tuple(source.path_prefixes),
            max_pages=job.max_pages,
            concurrency=settings.TALIA_CRAWL_CONCURRENCY,
            timeout_s=settings.TALIA_CRAWL_TIMEOUT_S,
            fetch_deadline_s=settings.TALIA_CRAWL_FETCH_DEADLINE_S,
            time_limit_s=settings.TALIA_INGEST_TIME_LIMIT_S,
            allow_hosts=tuple(settings.TALIA_CRAWL_ALLOW_HOSTS),
        )
        stats = crawl(config, lambda result: _on_page(run, result))
        job.removed = _remove_disappeared(source, run, set(stats.discovered))
        job.status = IngestStatus.COMPLETED
        if stats.refused:
            job.error = _refusals(stats)
            if not stats.fetched:  # the site itself is out of bounds, not a page or two of it
                job.status = IngestStatus.FAILED
    except SoftTimeLimitExceeded:
        logger.warning("Ingest %s of %s stopped at the task's time limit", job.pk, source.site_url)
        job.status, job.error = IngestStatus.FAILED, "Stopped at the time limit (TALIA_INGEST_TIME_LIMIT_S)."
    except Exception as exc:
        logger.exception("Ingest %s of %s failed", job.pk, source.site_url)
        job.status, job.error = IngestStatus.FAILED, str(exc)[:2000]
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "removed", "finished_at"])
    KnowledgeSource.objects.filter(pk=source.pk).update(status=job.status)
    job.refresh_from_db()
    logger.info(
        "Ingest %s finished as %s: %d fetched, %d indexed, %d skipped, %d failed, %d removed",
        job.pk,
        job.status,
        job.fetched,
        job.indexed,
        job.skipped,
        job.failed,
        job.removed,
    )
    if progress is not None:
        progress(job)
    return job


def _refusals(stats: CrawlStats) -> str:
    shown = "; ".join(stats.refused[:3])
    more = f" (and {len(stats.refused) - 3} more)" if len(stats.refused) > 3 else ""
    return f"Refused {len(stats.refused)} request(s): {shown}{more}"[:2000]


def _checked_embedder() -> embeddings.Embedder | None:
    embedder = embeddings.get_embedder()
    if embedder is not None and embedder.dimensions != embedding_column_dimensions():
        raise embeddings.EmbeddingError(
            f"The embedding column holds {embedding_column_dimensions()}-dimensional vectors but "
            f"TALIA_EMBED_DIM is {embedder.dimensions}: run `python manage.py reembed_knowledge` first."
        )
    return embedder


def embedding_column_dimensions() -> int:
    """The width of rag_chunk.embedding as the database has it (reembed_knowledge may have changed it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'rag_chunk'::regclass AND attname = 'embedding'"
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] and row[0] > 0 else EMBEDDING_COLUMN_DIMENSIONS


def _on_page(run: _Run, result: PageResult) -> None:
    outcome: str = result.outcome
    reason = result.reason
    url = result.final_url or result.url
    if outcome == "fetched" and result.page is not None:
        outcome, reason = _index_page(run, url, result.page)
    elif outcome == "failed" and (result.status in GONE_STATUSES or result.forbidden):
        run.gone.add(result.url)  # a page on a refused address is not answered from, even if indexed before
    counter = {"fetched": "indexed", "skipped": "skipped", "failed": "failed"}[outcome]
    changes: dict[str, Any] = {counter: F(counter) + 1}
    if result.outcome == "fetched":
        changes["fetched"] = F("fetched") + 1
    _record(run, url, "indexed" if outcome == "fetched" else outcome, reason, **changes)
    if run.progress is not None:
        run.job.refresh_from_db()
        run.progress(run.job)


def _record(run: _Run, url: str, outcome: str, reason: str, **counters: Any) -> None:
    """Count a page outcome and add it to the job's log, in the database at once (progress is live)."""
    run.job.log = [*run.job.log, {"url": url, "outcome": outcome, "reason": reason}][-LOG_SIZE:]
    IngestJob.objects.filter(pk=run.job.pk).update(log=run.job.log, **counters)


def _index_page(run: _Run, url: str, page: ExtractedPage) -> tuple[str, str]:
    """Store one fetched page; returns ("fetched", "") when indexed, else ("skipped"|"failed", why)."""
    source = run.job.source
    content_hash = page.content_hash
    duplicate_of = run.hashes.get(content_hash)
    if duplicate_of is not None and duplicate_of != url:
        # One page, several URLs: keep the shortest URL, whichever order the pages arrived in.
        if _canonical_order(duplicate_of) <= _canonical_order(url):
            run.gone.add(url)
            return "skipped", f"same content as {duplicate_of}"
        run.kept.discard(duplicate_of)
        run.gone.add(duplicate_of)
        reason = f"same content as {url}"
        _record(run, duplicate_of, "skipped", reason, indexed=F("indexed") - 1, skipped=F("skipped") + 1)
    run.hashes[content_hash] = url
    space = run.embedder.space if run.embedder is not None else ""
    existing = Document.objects.filter(source=source, url=url).first()
    if existing is not None and existing.content_hash == content_hash and existing.embedding_space == space:
        run.kept.add(url)
        return "skipped", "unchanged"
    pieces = chunk_sections(page.sections)
    if not pieces:
        return "skipped", "no text"
    try:
        vectors: list[list[float] | None] = (
            list(embeddings.embed_in_batches(run.embedder, [piece.text for piece in pieces]))
            if run.embedder is not None
            else [None] * len(pieces)
        )
    except embeddings.EmbeddingError as exc:
        if existing is not None:
            run.kept.add(url)  # keep the old version rather than lose the page
        return "failed", str(exc)[:300]
    config = SEARCH_CONFIGS.get(page.language, "simple")
    with transaction.atomic():
        document, _ = Document.objects.update_or_create(
            source=source,
            url=url,
            defaults={
                "title": page.title[:500],
                "language": page.language,
                "content_hash": content_hash,
                "fetched_at": timezone.now(),
                "embedding_space": space,
            },
        )
        document.chunks.all().delete()
        Chunk.objects.bulk_create(
            Chunk(
                document=document,
                position=piece.position,
                heading=piece.heading[:500],
                text=piece.text,
                search_config=config,
                embedding=vector,
                embedding_space=space if vector is not None else "",
            )
            for piece, vector in zip(pieces, vectors, strict=True)
        )
        document.chunks.update(
            search_vector=SearchVector("heading", weight="A", config=config)
            + SearchVector("text", weight="B", config=config)
        )
    IngestJob.objects.filter(pk=run.job.pk).update(chunks=F("chunks") + len(pieces))
    run.kept.add(url)
    return "fetched", ""


def _canonical_order(url: str) -> tuple[int, str]:
    return len(url), url


def _remove_disappeared(source: KnowledgeSource, run: _Run, discovered: set[str]) -> int:
    """Drop the pages that are gone: no longer linked or listed, answering 404/410, or now duplicates.

    A page the crawl knew of but did not reach (the page budget ran out, a timeout) is kept.
    """
    stale = [
        document.pk
        for document in source.documents.only("pk", "url")
        if document.url not in run.kept and (document.url not in discovered or document.url in run.gone)
    ]
    deleted, _ = Document.objects.filter(pk__in=stale).delete()
    return len(stale) if deleted else 0
