"""Hybrid retrieval: Postgres full-text search and the pgvector index, fused by reciprocal rank.

Each side keeps only passages that clear its bar (TALIA_RAG_MIN_COVERAGE of the question's words for
full text, TALIA_RAG_MIN_SIMILARITY for embeddings), so an empty result means "the site has no answer"
and the assistant offers a person instead of guessing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import F
from pgvector.django import CosineDistance

from rag import embeddings
from rag.models import Chunk
from talia.text import collapse_whitespace

logger = logging.getLogger("talia.rag")

RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the weight of the very first ranks
CANDIDATES = 30  # passages each side proposes before fusion
MAX_QUERY = 500
SNIPPET = 320
CONFIGS = ("spanish", "english", "simple")
WORD = re.compile(r"[^\W_]+", re.UNICODE)
OPERATORS = re.compile(r"\"|(^|\s)-\w|\s(or|OR)\s")


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    url: str
    title: str
    heading: str
    text: str
    snippet: str
    score: float  # the fused reciprocal-rank score
    coverage: float  # share of the question's words the passage holds (0 when only the vector found it)
    similarity: float | None  # cosine similarity of the embeddings, when there are embeddings


def search(query: str, *, limit: int | None = None) -> list[Hit]:
    """The passages that answer `query`, best first; empty when nothing clears the bar."""
    query = collapse_whitespace(query)[:MAX_QUERY]
    if not WORD.search(query):
        return []
    limit = limit or settings.TALIA_RAG_RESULTS
    by_text = full_text_candidates(query)
    by_vector = vector_candidates(query)
    scores: dict[int, float] = {}
    for ranked in (list(by_text), list(by_vector)):
        for rank, chunk_id in enumerate(ranked, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1 / (RRF_K + rank)
    best = sorted(scores, key=lambda chunk_id: scores[chunk_id], reverse=True)[:limit]
    chunks = Chunk.objects.select_related("document").in_bulk(best)
    return [
        Hit(
            chunk_id=chunk_id,
            url=chunks[chunk_id].document.url,
            title=chunks[chunk_id].document.title,
            heading=chunks[chunk_id].heading,
            text=chunks[chunk_id].text,
            snippet=_snippet(chunks[chunk_id]),
            score=round(scores[chunk_id], 6),
            coverage=round(by_text.get(chunk_id, 0.0), 3),
            similarity=round(by_vector[chunk_id], 3) if chunk_id in by_vector else None,
        )
        for chunk_id in best
        if chunk_id in chunks
    ]


def _snippet(chunk: Chunk) -> str:
    body = chunk.text
    if chunk.heading and body.startswith(chunk.heading):
        body = body[len(chunk.heading) :].lstrip()
    return body if len(body) <= SNIPPET else body[: SNIPPET - 1].rsplit(" ", 1)[0] + "…"


def _websearch_text(query: str) -> str:
    """The question as websearch syntax: kept as is when it uses operators, else any of its words."""
    if OPERATORS.search(query):
        return query
    return " or ".join(WORD.findall(query))


def full_text_candidates(query: str) -> dict[int, float]:
    """Chunk id -> coverage of the question's words, best ranked first, only those above the bar."""
    text = _websearch_text(query)
    tsquery = SearchQuery(text, search_type="websearch", config=CONFIGS[0])
    for config in CONFIGS[1:]:
        tsquery = tsquery | SearchQuery(text, search_type="websearch", config=config)
    ranked = list(
        Chunk.objects.filter(search_vector=tsquery)
        .annotate(rank=SearchRank(F("search_vector"), tsquery, cover_density=True))
        .order_by("-rank", "id")
        .values_list("id", "search_config")[:CANDIDATES]
    )
    if not ranked:
        return {}
    wanted = _query_lexemes(query)
    held = _chunk_lexemes([chunk_id for chunk_id, _config in ranked])
    candidates: dict[int, float] = {}
    for chunk_id, config in ranked:
        words = wanted.get(config) or set()
        coverage = len(words & held.get(chunk_id, set())) / len(words) if words else 0.0
        if coverage >= settings.TALIA_RAG_MIN_COVERAGE:
            candidates[chunk_id] = coverage
    return candidates


def _query_lexemes(query: str) -> dict[str, set[str]]:
    """The question's words as each configuration stems them (stop words dropped)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cfg, array(SELECT lexeme FROM unnest(to_tsvector(cfg::regconfig, %s))) "
            "FROM unnest(%s::text[]) AS cfg",
            [query, list(CONFIGS)],
        )
        return {config: set(lexemes) for config, lexemes in cursor.fetchall()}


def _chunk_lexemes(chunk_ids: list[int]) -> dict[int, set[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, array(SELECT lexeme FROM unnest(search_vector)) FROM rag_chunk WHERE id = ANY(%s)",
            [chunk_ids],
        )
        return {chunk_id: set(lexemes) for chunk_id, lexemes in cursor.fetchall()}


def vector_candidates(query: str) -> dict[int, float]:
    """Chunk id -> cosine similarity, nearest first, only those above the bar (none without embeddings)."""
    embedder = embeddings.get_embedder()
    if embedder is None:
        return {}
    try:
        vector = embedder.embed([query])[0]
    except embeddings.EmbeddingError:
        logger.warning("Could not embed the query; answering from full-text search alone", exc_info=True)
        return {}
    nearest = nearest_chunks(embedder.space, vector)
    return {
        chunk_id: 1 - distance for chunk_id, distance in nearest if 1 - distance >= settings.TALIA_RAG_MIN_SIMILARITY
    }


def nearest_chunks(space: str, vector: list[float]) -> list[tuple[int, float]]:
    """(chunk id, cosine distance) of the nearest chunks in `space`, through the HNSW index."""
    return list(
        Chunk.objects.filter(embedding_space=space)
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .values_list("id", "distance")[:CANDIDATES]
    )
