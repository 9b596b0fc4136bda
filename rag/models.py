"""The knowledge base: the sites TalIA reads, their pages, and the chunks retrieval works on.

A Chunk carries its text twice over for hybrid retrieval: a full-text vector built with the Postgres
configuration of its page's language, and (unless embeddings are off) an embedding in a pgvector column
with an HNSW index. `embedding_space` says which provider, model and dimension made the embedding, so
vectors from different spaces are never compared and a change of provider is detected.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pgvector.django import HnswIndex, VectorField

# The width of the embedding column. Changing TALIA_EMBED_DIM needs `manage.py reembed_knowledge`,
# which alters the column and its index; the `rag.E001` check says so.
EMBEDDING_COLUMN_DIMENSIONS = 384


class IngestStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")


class KnowledgeSource(models.Model):
    """One site the assistant answers from."""

    site_url = models.URLField(_("site URL"), max_length=500, unique=True)
    allowed_domain = models.CharField(_("allowed domain"), max_length=255)
    path_prefixes = models.JSONField(_("path prefixes"), default=list, blank=True)
    max_pages = models.PositiveIntegerField(_("max pages"), default=50)
    status = models.CharField(_("status"), max_length=16, choices=IngestStatus.choices, blank=True)
    last_job = models.ForeignKey(
        "IngestJob", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("last run")
    )
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("knowledge source")
        verbose_name_plural = _("knowledge sources")
        ordering = ["site_url"]

    def __str__(self) -> str:
        return self.site_url


class IngestJob(models.Model):
    """One run of the ingest pipeline over a source, with its figures as they grow."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.ForeignKey(KnowledgeSource, on_delete=models.CASCADE, related_name="jobs")
    status = models.CharField(_("status"), max_length=16, choices=IngestStatus.choices, default=IngestStatus.QUEUED)
    max_pages = models.PositiveIntegerField(_("max pages"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    fetched = models.PositiveIntegerField(_("fetched"), default=0)
    indexed = models.PositiveIntegerField(_("indexed"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    removed = models.PositiveIntegerField(_("removed"), default=0)
    chunks = models.PositiveIntegerField(_("chunks written"), default=0)
    error = models.TextField(_("error"), blank=True)
    # The last few page outcomes, newest last, for the admin and the API: [{url, outcome, reason}].
    log = models.JSONField(_("log"), default=list, blank=True)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ingest job")
        verbose_name_plural = _("ingest jobs")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.source} · {self.get_status_display()}"


class Document(models.Model):
    source = models.ForeignKey(KnowledgeSource, on_delete=models.CASCADE, related_name="documents")
    url = models.URLField(_("URL"), max_length=1000)
    title = models.CharField(_("title"), max_length=500, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    content_hash = models.CharField(_("content hash"), max_length=64)
    fetched_at = models.DateTimeField(_("fetched at"))
    # The embedding space of this page's chunks ("" when they have no embeddings).
    embedding_space = models.CharField(_("embedding space"), max_length=120, blank=True)

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["url"]
        constraints = [models.UniqueConstraint(fields=["source", "url"], name="unique_document_url_per_source")]

    def __str__(self) -> str:
        return self.title or self.url


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField(_("position"))
    heading = models.CharField(_("heading"), max_length=500, blank=True)
    text = models.TextField(_("text"))
    # The Postgres text-search configuration the vector was built with (spanish, english or simple).
    search_config = models.CharField(_("search configuration"), max_length=16, default="simple")
    search_vector = SearchVectorField(_("search vector"), null=True)
    embedding = VectorField(_("embedding"), dimensions=EMBEDDING_COLUMN_DIMENSIONS, null=True, blank=True)
    embedding_space = models.CharField(_("embedding space"), max_length=120, blank=True)

    class Meta:
        verbose_name = _("chunk")
        verbose_name_plural = _("chunks")
        ordering = ["document", "position"]
        constraints = [models.UniqueConstraint(fields=["document", "position"], name="unique_chunk_position")]
        indexes = [
            # No pending list: entries go straight into the index, so a search never scans a list of
            # recent inserts (up to gin_pending_list_limit) and the planner's cost of the index stays low.
            GinIndex(fields=["search_vector"], name="chunk_search_vector", fastupdate=False),
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.document} #{self.position}"
