"""System checks: embeddings made in another space than the configured one, or a column too narrow;
a malformed TALIA_CRAWL_ALLOW_HOSTS.

Database checks: `migrate` runs them, and so does `manage.py check --database default`.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

REEMBED = "Run `python manage.py reembed_knowledge` to embed the knowledge base again."


@register()
def crawl_allow_hosts_parse(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    from django.conf import settings

    from rag.netguard import parse_allow_hosts

    try:
        parse_allow_hosts(settings.TALIA_CRAWL_ALLOW_HOSTS)
    except ValueError as exc:
        return [
            Error(
                f"TALIA_CRAWL_ALLOW_HOSTS: {exc}.",
                hint="List host[:port] entries separated by commas, e.g. 127.0.0.1:8000,intranet.example.",
                id="rag.E002",
            )
        ]
    return []


@register(Tags.database)
def embedding_space_matches_settings(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    if not databases:
        return []
    from rag import embeddings
    from rag.ingest import embedding_column_dimensions
    from rag.models import Chunk

    try:
        embedder = embeddings.get_embedder()
        # Without embeddings (provider none) retrieval is full-text only: no chunk is out of date.
        stale = Chunk.objects.exclude(embedding_space=embedder.space).count() if embedder else 0
        width = embedding_column_dimensions()
    except DatabaseError:
        return []  # not migrated yet
    messages: list[Any] = []
    if embedder is not None and embedder.dimensions != width:
        messages.append(
            Error(
                f"The embedding column holds {width}-dimensional vectors but TALIA_EMBED_DIM is {embedder.dimensions}.",
                hint=REEMBED,
                id="rag.E001",
            )
        )
    if embedder is not None and stale:
        messages.append(
            Warning(
                f"{stale} knowledge-base passage(s) were embedded differently from the current setting ({embedder.space}); "
                "vector search skips them until they are embedded again.",
                hint=REEMBED,
                id="rag.W001",
            )
        )
    return messages
