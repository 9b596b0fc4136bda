"""Hybrid retrieval: Postgres full-text search and the pgvector index, fused by reciprocal rank.

Each side keeps only passages that clear its bar (TALIA_RAG_MIN_COVERAGE of the question's words for
full text, TALIA_RAG_MIN_SIMILARITY for embeddings), so an empty result means "the site has no answer"
and the assistant offers a person instead of guessing.

A search is two SQL statements (plus the embeddings request when a provider is configured):

1. `_analyse`: the question's words in each text-search configuration (`spanish`, `english`,
   `simple`), put rarest first by the column's statistics (`pg_stats.most_common_elems`, which ANALYZE
   keeps; a process reads them along with the lexemes at most once a minute, or after an ingest's
   ANALYZE); no table is read. Each word is a group of lexemes any of which counts: its own and, for a
   word of the visitor thesaurus (`rag/vocabulary.py`: "cobráis" → precio, tarifa...; "kids" →
   children...), its concept's, in the same language only. Interrogatives ("cuánto", "qué") are left
   out: they say what kind of answer is wanted, not what about. A stem of PREFIX_MIN letters or more
   (in `spanish` and `english`) also matches as a prefix, so "blanquear" finds "blanqueamiento".
2. `_hits_sql`: one statement that finds, ranks, filters and fuses. Each chunk is matched only with the
   configuration of its own page's language, through the GIN index on `search_vector`:
   - first with AND semantics (every word of the question);
   - only when that finds fewer passages than asked for, with OR over the question's rarest words,
     just enough of them that every passage over the coverage bar holds at least one: a passage that
     holds k of the n words misses at most n - k, so it holds one of any n - k + 1 of them. Words held
     by more than RARE_ROWS chunks are left out of that OR (unless all are), so the scan stays narrow
     on a large site; the passages over the bar that hold only such common words are the price;
   - coverage (share of the question's words the chunk holds) is computed for the matched chunks only
     and filters them before they are ranked: first by the inverse document frequency of the words
     they hold (a passage holding the rare "Bizum" beats one holding the common "take"), then by cover
     density (`ts_rank_cd`); the nearest neighbours come from the HNSW index; reciprocal-rank fusion,
     the final order and the page of each hit come out of the same statement.
A question written with websearch operators (quotes, `-word`, `or`) is matched as written instead.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from pgvector.django import CosineDistance

from rag import embeddings, vocabulary
from rag.models import Chunk
from talia.text import collapse_whitespace

__all__ = [
    "CANDIDATES",
    "CONFIGS",
    "MAX_QUERY",
    "Hit",
    "CosineDistance",
    "full_text_candidates",
    "nearest_chunks",
    "ranked_hits",
    "search",
    "vector_candidates",
]

logger = logging.getLogger("talia.rag")

RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the weight of the very first ranks
CANDIDATES = 30  # passages each side proposes before fusion
# A word held by more chunks than this is too common to look passages up by when AND finds too little:
# the passages over the bar that hold only such words are left out (on a site of up to this many chunks,
# none is).
RARE_ROWS = 1000
MAX_QUERY = 500
# A stem this long is also matched as a prefix: Snowball strips inflections, not derivations, so the
# verb a visitor asks with ("blanquear", "justificar", "install") is found in the noun a page uses
# ("blanqueamiento", "justificante", "installation"). Shorter stems would match unrelated words. The
# statistics know exact lexemes only, so a prefix may hold more chunks than its word's `rows` says.
PREFIX_MIN = 6
SNIPPET = 320
CONFIGS = ("spanish", "english", "simple")  # every value Chunk.search_config takes
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


@dataclass(frozen=True)
class _Terms:
    """The question in one text-search configuration: one group per word, rarest first.

    A group is the word's lexeme and, for a word of the thesaurus (`rag/vocabulary.py`), the lexemes of
    the words a page would use instead; a passage holds the word when it holds any of them.
    """

    config: str
    groups: list[tuple[str, ...]]  # distinct, rarest first
    rows: list[float]  # how many chunks hold each group's lexemes, as the statistics estimate it
    weights: list[float]  # each group's inverse document frequency: a rare word tells more
    websearch: str | None  # the question's own websearch query (tsquery text), when it uses operators

    def group_queries(self) -> list[str]:
        """Each group as a tsquery: `'word' | 'synonym'`; a long stem of a language's configuration also
        matches as a prefix (`'blanqu':*` holds "blanqueamiento" as well as "blanquear")."""
        return list(self._group_queries)

    @functools.cached_property
    def _group_queries(self) -> tuple[str, ...]:
        # Composed once: a search asks for them several times (ranking, AND, OR over the rarest words).
        prefix = self.config != "simple"
        return tuple(
            " | ".join(_quoted(lexeme) + (":*" if prefix and len(lexeme) >= PREFIX_MIN else "") for lexeme in group)
            for group in self.groups
        )

    def all_words(self) -> str:
        return " | ".join(self.group_queries())

    def every_word(self) -> str:
        return " & ".join(f"({query})" for query in self.group_queries())

    def rare_words(self, min_coverage: float) -> str:
        """OR over the rarest words, as few as every passage over the bar needs (it must hold one of
        them), leaving out those held by more than RARE_ROWS chunks unless every word is."""
        n = len(self.groups)
        needed = max(1, math.ceil(min_coverage * n - 1e-9))  # words a passage needs to clear the bar
        queries = self.group_queries()
        rare = [query for query, rows in zip(queries, self.rows, strict=True) if rows <= RARE_ROWS]
        return " | ".join((rare or queries)[: max(1, n - needed + 1)])


def search(query: str, *, limit: int | None = None) -> list[Hit]:
    """The passages that answer `query`, best first; empty when nothing clears the bar."""
    query = collapse_whitespace(query)[:MAX_QUERY]
    if not WORD.search(query):
        return []
    return ranked_hits(query, _embedded(query), limit=limit or settings.TALIA_RAG_RESULTS)


def ranked_hits(query: str, embedded: tuple[str, list[float]] | None, *, limit: int) -> list[Hit]:
    """The fused hits for `query` and its embedding `(space, vector)` (None: full text alone)."""
    terms = _analyse(query)
    sql, params = _hits_sql(terms, embedded, limit=limit)
    if not sql:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        Hit(
            chunk_id=chunk_id,
            url=url,
            title=title,
            heading=heading,
            text=text,
            snippet=_snippet(heading, text),
            score=round(score, 6),
            coverage=round(coverage, 3),
            similarity=round(similarity, 3) if similarity is not None else None,
        )
        for chunk_id, url, title, heading, text, score, coverage, similarity in rows
    ]


def full_text_candidates(query: str) -> dict[int, float]:
    """Chunk id -> coverage of the question's words, best ranked first, only those above the bar."""
    sql, params = _hits_sql(_analyse(collapse_whitespace(query)[:MAX_QUERY]), None, limit=CANDIDATES)
    if not sql:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: row[6] for row in cursor.fetchall()}


def vector_candidates(query: str) -> dict[int, float]:
    """Chunk id -> cosine similarity, nearest first, only those above the bar (none without embeddings)."""
    embedded = _embedded(query)
    if embedded is None:
        return {}
    space, vector = embedded
    return {
        chunk_id: 1 - distance
        for chunk_id, distance in nearest_chunks(space, vector)
        if 1 - distance >= settings.TALIA_RAG_MIN_SIMILARITY
    }


def nearest_chunks(space: str, vector: list[float]) -> list[tuple[int, float]]:
    """(chunk id, cosine distance) of the nearest chunks in `space`, through the HNSW index."""
    return list(
        Chunk.objects.filter(embedding_space=space)
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .values_list("id", "distance")[:CANDIDATES]
    )


def _embedded(query: str) -> tuple[str, list[float]] | None:
    embedder = embeddings.get_embedder()
    if embedder is None:
        return None
    try:
        return embedder.space, embedder.embed([query])[0]
    except embeddings.EmbeddingError:
        logger.warning("Could not embed the query; answering from full-text search alone", exc_info=True)
        return None


def _snippet(heading: str, text: str) -> str:
    body = text
    if heading and body.startswith(heading):
        body = body[len(heading) :].lstrip()
    return body if len(body) <= SNIPPET else body[: SNIPPET - 1].rsplit(" ", 1)[0] + "…"


def _quoted(lexeme: str) -> str:
    """A lexeme as a tsquery operand, matched exactly (no prefix, no weights)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


# The question's lexemes in each configuration; the lexemes of each of its words the thesaurus knows
# and of that word's concept (`rag/vocabulary.py`), in the same configuration; and (when `_statistics`
# is stale) one more row with the element statistics ANALYZE keeps for rag_chunk.search_vector (the
# most common lexemes and the share of rows holding each; any other lexeme is rarer than all of them)
# and the table's row estimate.
_ANALYSE_SQL = """
SELECT 'question', cfg,
       tsvector_to_array(to_tsvector(cfg::regconfig, %(query)s)),
       CASE WHEN %(websearch)s THEN websearch_to_tsquery(cfg::regconfig, %(query)s)::text END,
       NULL::real[],
       NULL::float8,
       NULL::text[]
FROM unnest(%(configs)s::text[]) AS cfg
UNION ALL
SELECT 'word', w.cfg, tsvector_to_array(to_tsvector(w.cfg::regconfig, w.word)), NULL, NULL, NULL,
       tsvector_to_array(to_tsvector(w.cfg::regconfig, w.concept))
FROM unnest(%(word_configs)s::text[], %(words)s::text[], %(concepts)s::text[]) AS w(cfg, word, concept)
"""
_STATISTICS_SQL = """
UNION ALL
SELECT 'statistics', NULL, s.most_common_elems::text::text[], NULL, s.most_common_elem_freqs,
       greatest(t.reltuples, 0), NULL
FROM (SELECT reltuples FROM pg_class WHERE oid = 'rag_chunk'::regclass) AS t
LEFT JOIN pg_stats s
       ON s.schemaname = current_schema() AND s.tablename = 'rag_chunk' AND s.attname = 'search_vector'
"""
STATISTICS_TTL_S = 60.0  # how long a process trusts the statistics it read (an ingest's ANALYZE resets it)
# (read at, lexeme -> chunks holding it, chunks in all)
_statistics: tuple[float, dict[str, float], float] | None = None


def forget_statistics() -> None:
    """Read the chunk table's statistics again at the next search (after an ANALYZE, say)."""
    global _statistics
    _statistics = None


def _analyse(query: str) -> list[_Terms]:
    """The question in each configuration that leaves it some words (statement 1 of a search)."""
    global _statistics
    known = _statistics
    stale = known is None or time.monotonic() - known[0] > STATISTICS_TTL_S
    websearch = bool(OPERATORS.search(query))
    words = [] if websearch else list(dict.fromkeys(WORD.findall(query.lower())))  # as written: no thesaurus
    looked_up = [
        (config, word, concept) for config in CONFIGS for word, concept in vocabulary.expansions(words, config)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            _ANALYSE_SQL + (_STATISTICS_SQL if stale else ""),
            {
                "query": query,
                "websearch": websearch,
                "configs": list(CONFIGS),
                "word_configs": [config for config, _word, _concept in looked_up],
                "words": [word for _config, word, _concept in looked_up],
                "concepts": [concept for _config, _word, concept in looked_up],
            },
        )
        rows = cursor.fetchall()
    if stale or known is None:
        statistics: dict[str, float] = {}
        chunks = 0.0
        for kind, _config, lexemes, _websearch, frequencies, total, _concept in rows:
            if kind == "statistics":
                chunks = total or 0.0
                if lexemes and frequencies:
                    statistics = {lexeme: f * total for lexeme, f in zip(lexemes, frequencies, strict=False)}
        known = _statistics = (time.monotonic(), statistics, chunks)
    held, chunks = known[1], known[2]
    asked = {config: (lexemes, websearch) for kind, config, lexemes, websearch, *_ in rows if kind == "question"}
    concepts: dict[str, list[tuple[list[str], list[str]]]] = {}
    for kind, config, lexemes, _websearch, _frequencies, _total, concept in rows:
        if kind == "word":
            concepts.setdefault(config, []).append((lexemes or [], concept or []))
    terms = []
    for config in CONFIGS:
        lexemes, websearch_query = asked.get(config, (None, None))
        if not lexemes and not concepts.get(config) or websearch_query == "":
            continue
        groups = _groups(lexemes or [], concepts.get(config, []))
        if not groups:
            continue
        rows_of = [sum(held.get(lexeme, 0.0) for lexeme in group) for group in groups]
        order = sorted(range(len(groups)), key=lambda i: (rows_of[i], groups[i]))
        terms.append(
            _Terms(
                config,
                [groups[i] for i in order],
                [rows_of[i] for i in order],
                [round(math.log(1 + chunks / (1 + rows_of[i])), 6) for i in order],
                websearch_query,
            )
        )
    return terms


def _groups(lexemes: list[str], concepts: list[tuple[list[str], list[str]]]) -> list[tuple[str, ...]]:
    """One group per word of the question: its lexeme, with its concept's lexemes when it has one.

    `concepts` holds, for each word the thesaurus knows, the word's own lexemes (none for a stop word
    such as "where") and its concept's (none for an interrogative, which is left out).
    """
    groups: dict[str, set[str]] = {lexeme: {lexeme} for lexeme in lexemes}
    extra: list[set[str]] = []
    for own, concept in concepts:
        present = [lexeme for lexeme in own if lexeme in groups]
        if not concept:
            for lexeme in present:
                groups.pop(lexeme)
        elif present:
            for lexeme in present:
                groups[lexeme] |= set(concept)
        else:
            extra.append(set(concept))
    unique: dict[tuple[str, ...], None] = {}
    for group in [*groups.values(), *extra]:
        unique[tuple(sorted(group))] = None  # two words of one concept ask one thing
    return list(unique)


# One side of the full-text search: the chunks `match` finds, each with the query of its own
# configuration (`question` has one row per configuration), those over the coverage bar ranked by
# cover density, the best CANDIDATES.
_RANKED = """
    SELECT id, held, ts_rank_cd(search_vector, rank_query, 0) AS rank, coverage
    FROM (
        SELECT c.id, c.search_vector, q.rank_query, m.held, m.words::float8 / cardinality(q.groups) AS coverage
        FROM rag_chunk c JOIN question q ON q.config = c.search_config
        CROSS JOIN LATERAL (
            SELECT count(*) AS words, coalesce(sum(g.weight), 0) AS held
            FROM unnest(q.groups, q.weights) AS g(query, weight) WHERE c.search_vector @@ g.query
        ) AS m
        WHERE ({match}){gate}
    ) AS matched
    WHERE coverage >= %(min_coverage)s
    ORDER BY held DESC, rank DESC, id
    LIMIT %(candidates)s
"""


def _match(terms: list[_Terms], name: str, query_of: Any, params: dict[str, Any]) -> str:
    """`(config = X AND search_vector @@ query) OR ...`: one GIN bitmap scan per configuration."""
    arms = []
    for i, term in enumerate(terms):
        params[f"{name}_{i}"] = query_of(term)
        arms.append(f"(c.search_config = '{term.config}' AND c.search_vector @@ %({name}_{i})s::tsquery)")
    return " OR ".join(arms)


def _hits_sql(
    terms: list[_Terms], embedded: tuple[str, list[float]] | None, *, limit: int
) -> tuple[str, dict[str, Any]]:
    """The statement that returns the fused hits: (id, url, title, heading, text, score, coverage,
    similarity), best first. Empty when there is nothing to search with."""
    params: dict[str, Any] = {
        "candidates": CANDIDATES,
        "enough": limit,
        "min_coverage": settings.TALIA_RAG_MIN_COVERAGE,
        "min_similarity": settings.TALIA_RAG_MIN_SIMILARITY,
        "rrf_k": RRF_K,
        "limit": limit,
    }
    ctes = []
    sides = []
    if terms:
        websearch = any(term.websearch for term in terms)
        values = []
        for i, term in enumerate(terms):
            params[f"rank_{i}"] = term.websearch or term.all_words()
            params[f"groups_{i}"] = term.group_queries()
            params[f"weights_{i}"] = term.weights
            values.append(
                f"('{term.config}', %(rank_{i})s::tsquery, %(groups_{i})s::tsquery[], %(weights_{i})s::float8[])"
            )
        ctes.append(f"question(config, rank_query, groups, weights) AS (VALUES {', '.join(values)})")
        if websearch:
            match = _match(terms, "websearch", lambda term: term.websearch, params)
            ctes.append(f"text_ranked AS MATERIALIZED ({_RANKED.format(match=match, gate='')})")
        else:
            every = _match(terms, "every", _Terms.every_word, params)
            rare = _match(terms, "rare", lambda term: term.rare_words(params["min_coverage"]), params)
            gate = " AND (SELECT count(*) FROM every_word) < %(enough)s"  # a one-time filter: skipped if enough
            ctes += [
                f"every_word AS MATERIALIZED ({_RANKED.format(match=every, gate='')})",
                f"rare_words AS MATERIALIZED ({_RANKED.format(match=rare, gate=gate)})",
                "text_ranked AS (SELECT * FROM rare_words UNION ALL "
                "SELECT * FROM every_word WHERE (SELECT count(*) FROM every_word) >= %(enough)s)",
            ]
        ctes.append(
            "text_hits AS (SELECT id, row_number() OVER (ORDER BY held DESC, rank DESC, id) AS position, coverage, "
            "NULL::float8 AS similarity FROM text_ranked)"
        )
        sides.append("SELECT id, position, coverage, similarity, position AS arrival FROM text_hits")
    if embedded is not None:
        params["space"], params["vector"] = embedded[0], "[" + ",".join(str(float(x)) for x in embedded[1]) + "]"
        ctes.append(
            "nearest AS MATERIALIZED (SELECT id, embedding <=> %(vector)s::vector AS distance FROM rag_chunk "
            "WHERE embedding_space = %(space)s ORDER BY distance LIMIT %(candidates)s)"
        )
        ctes.append(
            "vector_hits AS (SELECT id, row_number() OVER (ORDER BY distance, id) AS position, "
            "1 - distance AS similarity FROM nearest WHERE 1 - distance >= %(min_similarity)s)"
        )
        sides.append(
            "SELECT id, position, NULL::float8, similarity, %(candidates)s + position AS arrival FROM vector_hits"
        )
    if not sides:
        return "", params
    # Reciprocal-rank fusion; ties go to the full-text side's order, then the vector side's.
    ctes.append(
        "fused AS (SELECT id, sum(1.0::float8 / (%(rrf_k)s + position)) AS score, "  # noqa: S608 (fixed fragments)
        "coalesce(max(coverage), 0) AS coverage, max(similarity) AS similarity, min(arrival) AS arrival "
        f"FROM ({' UNION ALL '.join(sides)}) AS sides(id, position, coverage, similarity, arrival) "
        "GROUP BY id ORDER BY score DESC, arrival LIMIT %(limit)s)"
    )
    sql = (
        "WITH " + ",\n".join(ctes) + "\nSELECT f.id, d.url, d.title, c.heading, c.text, f.score, f.coverage, "
        "f.similarity FROM fused f JOIN rag_chunk c ON c.id = f.id JOIN rag_document d ON d.id = c.document_id "
        "ORDER BY f.score DESC, f.arrival"
    )
    return sql, params
