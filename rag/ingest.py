"""The ingest pipeline: crawl a source, index what changed, skip what did not, drop what disappeared.

`start_ingest` registers a site and queues one job for it (a Celery task runs `run_ingest` after
commit); `manage.py ingest_site` runs the same pipeline in the foreground. The job's figures (fetched,
indexed, skipped, failed, removed) are kept in memory as each page completes and written to its row at
most once a second (and at the end), so the admin and the API show progress while it runs without a
write per page. Indexed pages are written in batches (WRITE_BATCH pages, or whatever is pending after a
second): one upsert of their documents, one DELETE of their old chunks and one INSERT of the new chunks,
full-text vectors included. At the end the planner's statistics of the chunk table
are refreshed (ANALYZE), which retrieval also reads to find a question's rare words.

A job is bounded in time: each fetch by TALIA_CRAWL_FETCH_DEADLINE_S, the crawl by
TALIA_INGEST_TIME_LIMIT_S (enforced here, whatever the worker pool), and the Celery task by a soft and
a hard limit just above it (settings' CELERY_TASK_ANNOTATIONS). Requests to non-public addresses are
refused (`rag.netguard`) unless the host is in TALIA_CRAWL_ALLOW_HOSTS: such pages fail, the job's
error says what was refused, documents from them are dropped, and a site whose own address is refused
fails its job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from rag import embeddings, retrieval
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
WRITE_BATCH = 25  # indexed pages written together
PROGRESS_EVERY_S = 1.0  # the job row (and pending pages) are written at most this often, and at the end

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
class _Pending:
    """An indexed page waiting for the next batch write."""

    document: Document
    chunks: list[Chunk]


@dataclass
class _Run:
    job: IngestJob
    embedder: embeddings.Embedder | None
    progress: Progress | None
    kept: set[str] = field(default_factory=set)  # documents that stay: indexed or unchanged
    gone: set[str] = field(default_factory=set)  # answered 404/410, or duplicates of another page
    hashes: dict[str, str] = field(default_factory=dict)  # content hash -> the URL indexed with it
    stored: dict[str, tuple[str, str]] = field(default_factory=dict)  # URL -> (content hash, space) as stored
    pending: dict[str, _Pending] = field(default_factory=dict)  # URL -> page to write
    saved_at: float = 0.0  # monotonic time of the last write of the job's figures


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
        run = _Run(job, _checked_embedder(), progress, saved_at=time.monotonic())
        run.stored = {
            url: (content_hash, space)
            for url, content_hash, space in source.documents.values_list("url", "content_hash", "embedding_space")
        }
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
        try:
            stats = crawl(config, lambda result: _on_page(run, result))
        finally:
            _write_pending(run)  # what was indexed before a failure or the time limit is kept (figures below)
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
    job.save(update_fields=["status", "error", "removed", "finished_at", *PROGRESS_FIELDS])
    KnowledgeSource.objects.filter(pk=source.pk).update(status=job.status)
    if job.chunks or job.removed:
        _analyze_chunks()
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


PROGRESS_FIELDS = ["fetched", "indexed", "skipped", "failed", "chunks", "log"]


def _on_page(run: _Run, result: PageResult) -> None:
    outcome: str = result.outcome
    reason = result.reason
    url = result.final_url or result.url
    if outcome == "fetched" and result.page is not None:
        outcome, reason = _index_page(run, url, result.page)
    elif outcome == "failed" and (result.status in GONE_STATUSES or result.forbidden):
        run.gone.add(result.url)  # a page on a refused address is not answered from, even if indexed before
    counter = {"fetched": "indexed", "skipped": "skipped", "failed": "failed"}[outcome]
    job = run.job
    setattr(job, counter, getattr(job, counter) + 1)
    if result.outcome == "fetched":
        job.fetched += 1
    _log(run, url, "indexed" if outcome == "fetched" else outcome, reason)
    if len(run.pending) >= WRITE_BATCH or time.monotonic() - run.saved_at >= PROGRESS_EVERY_S:
        _write_pending(run, progress=time.monotonic() - run.saved_at >= PROGRESS_EVERY_S)
    if run.progress is not None:
        run.progress(job)


def _log(run: _Run, url: str, outcome: str, reason: str) -> None:
    """Add a page outcome to the job's log (in memory: `_write_pending` stores it)."""
    run.job.log = [*run.job.log, {"url": url, "outcome": outcome, "reason": reason}][-LOG_SIZE:]


def _write_pending(run: _Run, *, progress: bool = False) -> None:
    """Write the pages waiting in `run.pending` in one transaction and, with `progress`, the job's figures."""
    if run.pending:
        pages = list(run.pending.values())
        run.pending.clear()
        with transaction.atomic():
            documents = Document.objects.bulk_create(
                [page.document for page in pages],
                update_conflicts=True,
                unique_fields=["source", "url"],
                update_fields=["title", "language", "content_hash", "fetched_at", "embedding_space"],
            )
            ids = [document.pk for document in documents]
            Chunk.objects.filter(document_id__in=ids).delete()
            for page, document in zip(pages, documents, strict=True):
                for chunk in page.chunks:
                    chunk.document_id = document.pk
            _insert_chunks([chunk for page in pages for chunk in page.chunks])
    if progress:
        job = run.job
        IngestJob.objects.filter(pk=job.pk).update(**{name: getattr(job, name) for name in PROGRESS_FIELDS})
        run.saved_at = time.monotonic()


# The chunks of a batch in one statement, their full-text vectors built by Postgres as they are
# inserted (heading weight A, text weight B, each chunk's configuration), never written twice.
_INSERT_CHUNKS = """
INSERT INTO rag_chunk (document_id, position, heading, text, search_config, search_vector, embedding,
                       embedding_space)
SELECT document_id, position, heading, text, config,
       setweight(to_tsvector(config::regconfig, heading), 'A') || setweight(to_tsvector(config::regconfig, text), 'B'),
       embedding::vector, space
FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
     AS rows(document_id, position, heading, text, config, embedding, space)
"""


def _insert_chunks(chunks: list[Chunk]) -> None:
    columns: list[list[Any]] = [[], [], [], [], [], [], []]
    for chunk in chunks:
        vector = None if chunk.embedding is None else "[" + ",".join(str(float(x)) for x in chunk.embedding) + "]"
        for column, value in zip(
            columns,
            [
                chunk.document_id,
                chunk.position,
                chunk.heading,
                chunk.text,
                chunk.search_config,
                vector,
                chunk.embedding_space,
            ],
            strict=True,
        ):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_CHUNKS, columns)


def _analyze_chunks() -> None:
    """Refresh the chunk table's statistics, so the planner and retrieval's rare words see the new pages."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rag_chunk")
    retrieval.forget_statistics()


def _index_page(run: _Run, url: str, page: ExtractedPage) -> tuple[str, str]:
    """Queue one fetched page for writing; returns ("fetched", "") when indexed, else ("skipped"|"failed", why)."""
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
        run.job.indexed -= 1
        run.job.skipped += 1
        _log(run, duplicate_of, "skipped", f"same content as {url}")
    run.hashes[content_hash] = url
    space = run.embedder.space if run.embedder is not None else ""
    stored = run.stored.get(url)
    if stored is not None and stored == (content_hash, space):
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
        if stored is not None:
            run.kept.add(url)  # keep the old version rather than lose the page
        return "failed", str(exc)[:300]
    config = SEARCH_CONFIGS.get(page.language, "simple")
    document = Document(
        source=source,
        url=url,
        title=page.title[:500],
        language=page.language,
        content_hash=content_hash,
        fetched_at=timezone.now(),
        embedding_space=space,
    )
    chunks = [
        Chunk(
            position=piece.position,
            heading=piece.heading[:500],
            text=piece.text,
            search_config=config,
            embedding=vector,
            embedding_space=space if vector is not None else "",
        )
        for piece, vector in zip(pieces, vectors, strict=True)
    ]
    run.pending[url] = _Pending(document, chunks)
    run.stored[url] = (content_hash, space)
    run.job.chunks += len(pieces)
    run.kept.add(url)
    return "fetched", ""


def _canonical_order(url: str) -> tuple[int, str]:
    return len(url), url


def _remove_disappeared(source: KnowledgeSource, run: _Run, discovered: set[str]) -> int:
    """Drop the pages that are gone: no longer linked or listed, answering 404/410, or now duplicates.

    A page the crawl knew of but did not reach (the page budget ran out, a timeout) is kept.
    """
    stale = [
        pk
        for pk, url in Document.objects.filter(source=source).values_list("pk", "url")
        if url not in run.kept and (url not in discovered or url in run.gone)
    ]
    deleted, _ = Document.objects.filter(pk__in=stale).delete()
    return len(stale) if deleted else 0
