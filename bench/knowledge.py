"""The knowledge-base scenarios of `bench/run.py`: hybrid retrieval on generated corpora, and ingest.

`retrieval`: for each size (BENCH_RETRIEVAL_SIZES, default 10000,100000 chunks) the knowledge base is
replaced by a generated corpus (`rag/tests/corpus.py`: Spanish and English pages with a Zipf vocabulary
and embeddings near their topic's centroid), loaded without indexes and indexed afterwards with the
migrations' own definitions (as a restore would), then analysed. Questions are drawn from the corpus
(common words around two to four rarer words of a page's topic), each with an embedding (the mean of its
page's chunks). Measured, each question in turn:
- TalIA's hybrid search, `retrieval.ranked_hits(question, embedding)`: everything `search()` does except
  asking the provider to embed the question (a network call, the same with or without TalIA);
- TalIA's full-text search alone (`ranked_hits(question, None)`, as with TALIA_EMBED_PROVIDER=none);
- the floors: the raw HNSW query (`ORDER BY embedding <=> q LIMIT 30` on the same table) and the raw
  full-text query (`search_vector @@ plainto_tsquery(<the page's configuration>, q)` ranked by
  `ts_rank_cd`, LIMIT 30), and their sum for the hybrid ratio.

`ingest`: the local 200-page site (`rag/tests/many_pages.py`, served on 127.0.0.1) ingested with
embeddings off, from an empty knowledge base, three times; the floor is the crawler alone (fetch and
parse, the same site and settings, results dropped). Pages/s is the median of the three. A fourth,
untimed run counts the SQL statements per page.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from bench.report import Report, Row, latency, ms

SIZES = [int(size) for size in os.environ.get("BENCH_RETRIEVAL_SIZES", "10000,100000").split(",") if size]
HNSW_EF_SEARCH = 40  # pgvector's default hnsw.ef_search, stated for the record


def _index_build_memory(size: int) -> str:
    """`maintenance_work_mem` for building the indexes of `size` chunks: the HNSW graph must fit in it.

    384 float4 dimensions are 1.5 kB a vector and the graph (m = 16) adds about as much again, so 1M
    chunks need about 3 GB; below that pgvector builds on disk, many times slower.
    """
    return "1GB" if size <= 200_000 else f"{max(4, size * 4 // 1_000_000)}GB"


def _empty_knowledge_base() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE rag_chunk, rag_document, rag_ingestjob, rag_knowledgesource CASCADE")


def _load_corpus(size: int) -> float:
    """Replace the knowledge base by a generated corpus of `size` chunks; returns the seconds it took."""
    from django.db import connection

    from rag.tests import corpus

    start = time.perf_counter()
    _empty_knowledge_base()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'rag_chunk' "
            "AND indexname IN ('chunk_search_vector', 'chunk_embedding_hnsw')"
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        corpus.generate(size, embeddings=True)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"SET maintenance_work_mem = '{_index_build_memory(size)}'")
            for _name, definition in indexes:
                cursor.execute(definition)
            cursor.execute("RESET maintenance_work_mem")
            cursor.execute("ANALYZE rag_chunk")
    return time.perf_counter() - start


def _timed(action: Callable[[int], object], runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _retrieval_at(size: int, runs: int) -> dict[str, dict[str, float]]:
    """Latencies of TalIA's searches and of the raw queries over `runs` questions on `size` chunks."""
    from django.db import connection

    from rag import retrieval
    from rag.tests import corpus

    print(f"retrieval: loading {size:,} generated chunks ...", flush=True)
    loaded = _load_corpus(size)
    asked = corpus.questions(runs, size)
    vectors = [corpus.page_vector(question.page) for question in asked]
    literals = ["[" + ",".join(repr(x) for x in vector) + "]" for vector in vectors]
    print(f"retrieval: {size:,} chunks loaded and indexed in {loaded:.0f} s; {runs} questions", flush=True)

    def hybrid(i: int) -> None:
        retrieval.ranked_hits(asked[i].text, (corpus.SPACE, vectors[i]), limit=3)

    def full_text(i: int) -> None:
        retrieval.ranked_hits(asked[i].text, None, limit=3)

    def raw_hnsw(i: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, embedding <=> %s::vector AS distance FROM rag_chunk WHERE embedding_space = %s "
                "ORDER BY distance LIMIT 30",
                [literals[i], corpus.SPACE],
            )
            cursor.fetchall()

    def raw_full_text(i: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM rag_chunk WHERE search_vector @@ plainto_tsquery(%s::regconfig, %s) "
                "ORDER BY ts_rank_cd(search_vector, plainto_tsquery(%s::regconfig, %s)) DESC LIMIT 30",
                [asked[i].config, asked[i].text, asked[i].config, asked[i].text],
            )
            cursor.fetchall()

    actions = {"hybrid": hybrid, "full_text": full_text, "raw_hnsw": raw_hnsw, "raw_full_text": raw_full_text}
    for action in actions.values():  # warm up: the same pages in the cache for each
        _timed(action, min(runs, 50))
    measured = {name: latency(_timed(action, runs)) for name, action in actions.items()}
    measured["load"] = {"seconds": round(loaded, 1)}
    return measured


def bench_retrieval(runs: int, report: Report) -> None:
    runs = max(runs, 200)
    talia_p50: dict[int, float] = {}
    hnsw_p50: dict[int, float] = {}
    for size in SIZES:
        measured = _retrieval_at(size, runs)
        floor_p50 = measured["raw_hnsw"]["p50_ms"] + measured["raw_full_text"]["p50_ms"]
        floor_p99 = measured["raw_hnsw"]["p99_ms"] + measured["raw_full_text"]["p99_ms"]
        talia_p50[size], hnsw_p50[size] = measured["hybrid"]["p50_ms"], measured["raw_hnsw"]["p50_ms"]
        scenario = f"retrieval {size // 1000}k"
        report.add(
            Row(
                scenario,
                f"hybrid search, {size:,} chunks ({runs} questions)",
                ms(measured["hybrid"]),
                f"HNSW + full text: p50 {floor_p50:.2f} ms, p99 {floor_p99:.2f} ms",
                measured["hybrid"]["p50_ms"] / floor_p50,
                {"size": size, "hnsw_ef_search": HNSW_EF_SEARCH, **measured},
            )
        )
        report.add(Row(scenario, "  floor: raw HNSW query", ms(measured["raw_hnsw"])))
        report.add(
            Row(
                scenario,
                "full-text search alone (embeddings off)",
                ms(measured["full_text"]),
                f"raw full text: {ms(measured['raw_full_text'])}",
                measured["full_text"]["p50_ms"] / measured["raw_full_text"]["p50_ms"],
            )
        )
    if len(SIZES) > 1:
        small, large = SIZES[0], SIZES[-1]
        growth, index_growth = talia_p50[large] / talia_p50[small], hnsw_p50[large] / hnsw_p50[small]
        report.add(
            Row(
                "retrieval",
                f"growth of the p50 from {small // 1000}k to {large // 1000}k chunks",
                f"{growth:.2f}×",
                f"raw HNSW {index_growth:.2f}×",
                growth / index_growth,
                {"talia_p50_ms": talia_p50, "hnsw_p50_ms": hnsw_p50},
            )
        )
    _empty_knowledge_base()


def bench_ingest(runs: int, report: Report) -> None:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    from rag import ingest
    from rag.crawl import CrawlConfig, crawl
    from rag.tests import many_pages
    from rag.tests.site import serve_site

    pages = int(os.environ.get("BENCH_INGEST_PAGES", "200"))
    rounds = 3
    with (
        serve_site(many_pages.routes(pages, host="localhost")) as site,
        override_settings(TALIA_CRAWL_ALLOW_HOSTS=[site.host], TALIA_EMBED_PROVIDER="none"),
    ):
        config = CrawlConfig(
            start_url=site.url("/"),
            allowed_domain="127.0.0.1",
            max_pages=pages,
            concurrency=settings.TALIA_CRAWL_CONCURRENCY,
            timeout_s=settings.TALIA_CRAWL_TIMEOUT_S,
            fetch_deadline_s=settings.TALIA_CRAWL_FETCH_DEADLINE_S,
            allow_hosts=(site.host,),
        )

        def one_ingest() -> tuple[float, int]:
            _empty_knowledge_base()
            start = time.perf_counter()
            job = ingest.start_ingest(site.url("/"), max_pages=pages, enqueue=False)
            job = ingest.run_ingest(str(job.pk))
            return time.perf_counter() - start, job.indexed

        def one_crawl() -> tuple[float, int]:
            start = time.perf_counter()
            stats = crawl(config, lambda result: None)
            return time.perf_counter() - start, stats.fetched

        talia = [one_ingest() for _ in range(rounds)]
        floor = [one_crawl() for _ in range(rounds)]
        _empty_knowledge_base()
        with CaptureQueriesContext(connection) as queries:
            job = ingest.run_ingest(str(ingest.start_ingest(site.url("/"), max_pages=pages, enqueue=False).pk))
        statements = len(queries.captured_queries)
    _empty_knowledge_base()
    talia_rate = statistics.median(indexed / seconds for seconds, indexed in talia)
    floor_rate = statistics.median(fetched / seconds for seconds, fetched in floor)
    report.add(
        Row(
            "ingest",
            f"local {pages}-page site, embeddings off ({rounds} runs)",
            f"{talia_rate:.0f} pages/s, {statements / max(1, job.indexed):.2f} SQL per page",
            f"crawl + parse alone {floor_rate:.0f} pages/s",
            floor_rate / talia_rate,
            {
                "pages": pages,
                "talia_runs": [{"seconds": round(s, 3), "indexed": n} for s, n in talia],
                "floor_runs": [{"seconds": round(s, 3), "fetched": n} for s, n in floor],
                "sql_statements": statements,
                "indexed": job.indexed,
            },
        )
    )
    del runs


def _raw_full_text_urls(question: str) -> list[str]:
    """The floor of `quality`: Postgres's own full-text search on the same chunks, with no more than it
    gives (`plainto_tsquery` in each chunk's configuration, every word required, ranked by `ts_rank_cd`),
    the pages of its first three results."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.url FROM rag_chunk c JOIN rag_document d ON d.id = c.document_id "
            "WHERE c.search_vector @@ plainto_tsquery(c.search_config::regconfig, %s) "
            "ORDER BY ts_rank_cd(c.search_vector, plainto_tsquery(c.search_config::regconfig, %s)) DESC, c.id LIMIT 3",
            [question, question],
        )
        return [url for (url,) in cursor.fetchall()]


def bench_quality(runs: int, report: Report) -> None:
    """hit@3 per site and language: the question sets of `rag/tests/test_quality.py` (counts, not time)."""
    from django.test.utils import override_settings

    from rag import retrieval
    from rag.tests import bike_site, questions
    from rag.tests.hit_rate import demo_routes, hits_at_3, ingest_site
    from rag.tests.site import serve_site

    sites = [
        ("demo", demo_routes(host="localhost"), "/demo-site/", questions.QUESTIONS, questions.UNANSWERABLE),
        ("bike shop", bike_site.ROUTES, "/", bike_site.QUESTIONS, bike_site.UNANSWERABLE),
    ]
    for name, routes, start, asked, unanswerable in sites:
        _empty_knowledge_base()
        with (
            serve_site(routes) as site,
            override_settings(TALIA_CRAWL_ALLOW_HOSTS=[site.host], TALIA_EMBED_PROVIDER="none"),
        ):
            pages = ingest_site(site, start)
            talia = hits_at_3(site, asked)
            floor = hits_at_3(site, asked, _raw_full_text_urls)
            answered = sum(1 for question, _locale in unanswerable if retrieval.search(question))
        for locale in ("es", "en"):
            score, raw = talia[locale], floor[locale]
            report.add(
                Row(
                    f"quality {name}",
                    f"hit@3, {locale} questions ({pages} pages, full text)",
                    f"{score.hits}/{score.asked} = {score.hits / score.asked:.0%}",
                    f"raw full text {raw.hits}/{raw.asked} = {raw.hits / raw.asked:.0%}",
                    None,
                    {
                        "site": name,
                        "locale": locale,
                        "asked": score.asked,
                        "hits": score.hits,
                        "floor_hits": raw.hits,
                        "misses": [{"question": q, "page": p, "found": found} for q, p, found in score.misses],
                    },
                )
            )
        report.add(
            Row(
                f"quality {name}",
                "questions the site does not answer, answered anyway",
                f"{answered}/{len(unanswerable)}",
                figures={"site": name, "asked": len(unanswerable), "answered": answered},
            )
        )
    _empty_knowledge_base()
    del runs
