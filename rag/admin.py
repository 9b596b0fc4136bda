"""The knowledge base in Django admin: sites (with "ingest now"), jobs with their live figures, pages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from rag import ingest
from rag.models import Chunk, Document, IngestJob, KnowledgeSource


@admin.register(KnowledgeSource)
class KnowledgeSourceAdmin(admin.ModelAdmin):
    list_display = ["site_url", "status", "max_pages", "documents", "last_job"]
    readonly_fields = ["status", "last_job", "created"]
    search_fields = ["site_url"]
    actions = ["ingest_now"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[KnowledgeSource]:
        from django.db.models import Count

        return super().get_queryset(request).annotate(document_count=Count("documents"))

    @admin.display(description=_("pages"), ordering="document_count")
    def documents(self, source: Any) -> int:
        return int(source.document_count)

    @admin.action(description=_("Ingest the selected sites now"))
    def ingest_now(self, request: HttpRequest, queryset: QuerySet[KnowledgeSource]) -> None:
        for source in queryset:
            ingest.start_ingest(source.site_url, user=request.user)
        count = queryset.count()
        self.message_user(
            request,
            ngettext("%(count)d site queued for ingest.", "%(count)d sites queued for ingest.", count)
            % {"count": count},
            messages.SUCCESS,
        )


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IngestJob)
class IngestJobAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["source", "status", "fetched", "indexed", "skipped", "failed", "removed", "created", "finished_at"]
    list_filter = ["status", "source"]
    readonly_fields = [field.name for field in IngestJob._meta.fields]


class ChunkInline(ReadOnlyMixin, admin.TabularInline):
    model = Chunk
    fields = ["position", "heading", "text", "search_config", "embedding_space"]
    extra = 0
    can_delete = False


@admin.register(Document)
class DocumentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["title", "url", "language", "source", "fetched_at"]
    list_filter = ["language", "source"]
    search_fields = ["title", "url"]
    readonly_fields = ["source", "url", "title", "language", "content_hash", "fetched_at", "embedding_space"]
    inlines = [ChunkInline]
