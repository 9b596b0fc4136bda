"""The full-text side of retrieval goes through the GIN index, checked in the plans of the very
statements `search` runs, on a generated corpus large enough that the planner prefers the index to a
sequential scan for a question of rare words (counts and plans, never time; see rag/tests/corpus.py).

On a corpus this small a word held by a few percent of the chunks still counts as rare (RARE_ROWS), so
a question with common words may rightly be answered with a sequential scan: the questions here are
made of a topic's words and the language's stop words. `bench/run.py retrieval` runs mixed questions on
10k and 100k chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rag import retrieval
from rag.models import KnowledgeSource
from rag.tests import corpus

CHUNKS = 12000
SEARCH_INDEX = "chunk_search_vector"


@pytest.fixture(scope="module")
def corpus_rows(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """One corpus for the module (committed: generating it takes seconds), removed at the end."""
    with django_db_blocker.unblock():
        corpus.generate(CHUNKS)
        yield
        KnowledgeSource.objects.filter(site_url=corpus.SITE).delete()


@pytest.fixture
def generated(corpus_rows: None, db: Any) -> None:
    pass


def questions() -> list[str]:
    """Two to four of a topic's words (ranks 5 to 60) between the language's stop words."""
    asked = []
    for topic in range(0, 40, 2):
        lang = "en" if topic % 4 else "es"
        words = corpus.topic_words(lang, topic)[5 + topic : 5 + topic + 2 + topic % 3]
        asked.append(f"¿Dónde está {' '.join(words)}?" if lang == "es" else f"Where is the {' and '.join(words)}?")
    return asked


def search_statements(question: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        retrieval.search(question)
    return [query["sql"] for query in queries.captured_queries]


def executed_plan(sql: str) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        (raw,) = cursor.fetchone()
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def ran(node: dict[str, Any]) -> bool:
    return node.get("Actual Loops", 0) > 0


def subplan(plan: dict[str, Any], name: str) -> dict[str, Any]:
    return next(node for node in nodes(plan) if node.get("Subplan Name") == f"CTE {name}")


def scans_of_the_chunks(plan: dict[str, Any]) -> list[str]:
    """How the executed parts of a plan read rag_chunk: "Seq Scan", or the index names."""
    return [
        node.get("Index Name") or node["Node Type"]
        for node in nodes(plan)
        if ran(node)
        and (node.get("Relation Name") == "rag_chunk" or node.get("Index Name") == SEARCH_INDEX)
        and node["Node Type"] != "Bitmap Heap Scan"
    ]


def test_a_search_is_two_statements_and_reads_the_chunks_through_the_gin_index(generated):
    for question in questions():
        statements = search_statements(question)

        assert len(statements) == 2, question  # the question's words, then the hits
        plan = executed_plan(statements[-1])
        scans = scans_of_the_chunks(plan)
        assert SEARCH_INDEX in scans and "Seq Scan" not in scans, (question, scans)


def test_every_word_first_and_the_rare_words_only_when_that_finds_too_little(generated):
    common_pair = " ".join(corpus.topic_words("es", 10)[:2])  # in nearly every chunk of the topic
    statements = search_statements(f"¿Dónde está {common_pair}?")
    plan = executed_plan(statements[-1])
    assert SEARCH_INDEX in scans_of_the_chunks(subplan(plan, "every_word"))
    assert scans_of_the_chunks(subplan(plan, "rare_words")) == []  # never executed

    rare_pair = " ".join(corpus.topic_words("es", 10)[20:26:5])
    statements = search_statements(f"¿Dónde está {rare_pair} zzyzxqu?")  # no chunk holds every word
    plan = executed_plan(statements[-1])
    assert set(scans_of_the_chunks(subplan(plan, "every_word"))) == {SEARCH_INDEX}
    assert SEARCH_INDEX in scans_of_the_chunks(subplan(plan, "rare_words"))


def test_the_rare_words_miss_no_passage_over_the_bar(generated, settings):
    """Against an exhaustive reading of every chunk: the same passages clear the coverage bar."""
    question = "¿Dónde está " + " ".join(corpus.topic_words("es", 12)[30:41:10]) + " zzyzxqu?"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cfg, tsvector_to_array(to_tsvector(cfg::regconfig, %s)) FROM unnest(%s::text[]) cfg",
            [question, list(retrieval.CONFIGS)],
        )
        wanted = {config: set(lexemes) for config, lexemes in cursor.fetchall()}
        cursor.execute("SELECT id, search_config, tsvector_to_array(search_vector) FROM rag_chunk")
        reference = {
            chunk_id
            for chunk_id, config, lexemes in cursor.fetchall()
            if len(wanted[config] & set(lexemes)) / len(wanted[config]) >= settings.TALIA_RAG_MIN_COVERAGE
        }

    assert 3 <= len(reference) < retrieval.CANDIDATES  # room for all of them among the candidates
    assert set(retrieval.full_text_candidates(question)) == reference
