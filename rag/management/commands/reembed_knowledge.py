"""`manage.py reembed_knowledge`: embed the knowledge base again after the embedding settings changed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from rag import embeddings
from rag.ingest import embedding_column_dimensions
from rag.models import Chunk, Document


class Command(BaseCommand):
    help = (
        "Embed every knowledge-base passage with the configured provider, after a change of "
        "TALIA_EMBED_PROVIDER, TALIA_EMBED_MODEL or TALIA_EMBED_DIM (the column is resized when the "
        "dimension changed)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        embedder = embeddings.get_embedder()
        if embedder is None:
            self.stdout.write("Embeddings are off (TALIA_EMBED_PROVIDER=none): retrieval uses full-text search only.")
            return
        width = embedding_column_dimensions()
        if embedder.dimensions != width:
            self.resize(embedder.dimensions)
            self.stdout.write(f"Resized the embedding column from {width} to {embedder.dimensions} dimensions.")
        stale = Document.objects.filter(chunks__isnull=False).exclude(embedding_space=embedder.space).distinct()
        total, done = stale.count(), 0
        for document in stale.iterator():
            chunks = list(document.chunks.order_by("position"))
            try:
                vectors = embeddings.embed_in_batches(embedder, [chunk.text for chunk in chunks])
            except embeddings.EmbeddingError as exc:
                raise CommandError(f"Stopped at {document.url}: {exc} ({done} of {total} pages done).") from None
            with transaction.atomic():
                # One UPDATE per passage: bulk_update would cast to the model's declared vector width.
                for chunk, vector in zip(chunks, vectors, strict=True):
                    Chunk.objects.filter(pk=chunk.pk).update(embedding=vector, embedding_space=embedder.space)
                Document.objects.filter(pk=document.pk).update(embedding_space=embedder.space)
            done += 1
            self.stdout.write(f"[{done}/{total}] {document.url}")
        self.stdout.write(self.style.SUCCESS(f"{done} page(s) embedded as {embedder.space}."))

    @staticmethod
    def resize(dimensions: int) -> None:
        """Give rag_chunk.embedding a new width: old vectors cannot be kept, so they are cleared."""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
            cursor.execute(f"ALTER TABLE rag_chunk ALTER COLUMN embedding TYPE vector({int(dimensions)}) USING NULL")
            cursor.execute(
                "CREATE INDEX chunk_embedding_hnsw ON rag_chunk USING hnsw (embedding vector_cosine_ops) "
                "WITH (m = 16, ef_construction = 64)"
            )
            # Last: row updates queue deferred constraint checks, which forbid further ALTER/CREATE INDEX.
            cursor.execute("UPDATE rag_chunk SET embedding_space = ''")
            cursor.execute("UPDATE rag_document SET embedding_space = ''")
