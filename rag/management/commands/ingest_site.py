"""`manage.py ingest_site URL`: read a site into the knowledge base now, with a progress bar."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rag import ingest
from rag.crawl import normalize_url
from rag.models import IngestJob, IngestStatus, KnowledgeSource

BAR = 30


class Command(BaseCommand):
    help = "Crawl a site and index its pages for the assistant (the same pipeline as POST /api/rag/ingest)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("site", help="The site's URL, e.g. https://www.example.com/")
        parser.add_argument("--max-pages", type=int, default=None, help="At most this many pages.")
        parser.add_argument(
            "--background", action="store_true", help="Queue the job for the Celery worker instead of running it here."
        )
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if the site already has indexed pages.")

    def handle(
        self, *args: Any, site: str, max_pages: int | None, background: bool, if_empty: bool, **options: Any
    ) -> None:
        if max_pages is not None and max_pages < 1:
            raise CommandError("--max-pages must be at least 1.")
        indexed = KnowledgeSource.objects.filter(site_url=normalize_url(site) or site, documents__isnull=False)
        if if_empty and indexed.exists():
            self.stdout.write(f"{site} is already indexed; nothing to do.")
            return
        try:
            job = ingest.start_ingest(site, max_pages=max_pages, enqueue=background)
        except ingest.IngestError as exc:
            raise CommandError(str(exc)) from None
        if background:
            self.stdout.write(f"Ingest of {site} queued as job {job.pk}.")
            return
        if job.status != IngestStatus.QUEUED:
            raise CommandError(f"An ingest of {site} is already under way (job {job.pk}).")
        job = ingest.run_ingest(str(job.pk), progress=self.show)
        if self.stdout.isatty():
            self.stdout.write("")
        summary = (
            f"{job.fetched} fetched, {job.indexed} indexed, {job.skipped} skipped, {job.failed} failed, "
            f"{job.removed} removed, {job.chunks} passages"
        )
        if job.status != IngestStatus.COMPLETED:
            raise CommandError(f"Ingest failed: {job.error} ({summary})")
        self.stdout.write(self.style.SUCCESS(f"Ingested {site}: {summary}."))

    def show(self, job: IngestJob) -> None:
        done = job.indexed + job.skipped + job.failed
        filled = min(BAR, round(BAR * done / max(job.max_pages, 1)))
        line = f"[{'#' * filled}{'.' * (BAR - filled)}] {done}/{job.max_pages} pages · {job.indexed} indexed"
        if self.stdout.isatty():
            self.stdout.write("\r" + line, ending="")
        else:
            self.stdout.write(line)
