"""Hybrid retrieval on real Postgres: full text, the HNSW index, the "no answer" bar, embedding spaces."""

from __future__ import annotations

import io

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import connection, transaction

from rag import embeddings, ingest, retrieval
from rag.models import Chunk, Document
from rag.tests.site import page, serve_site, sitemap
from talia.testing.fake_openai import embedding_vector

# The test sites run on 127.0.0.1, which the crawler refuses unless allowed.
pytestmark = pytest.mark.usefixtures("allow_local_sites")

ROUTES = {
    "/sitemap.xml": sitemap("{site}/", "{site}/hours", "{site}/prices", "{site}/en/prices"),
    "/": page(
        "Clínica Demo",
        "<main><h1>Clínica Demo</h1><p>Clínica dental familiar en el centro de Valencia.</p></main>",
        "es",
    ),
    "/hours": page(
        "Horario y ubicación",
        "<main><h1>Horario</h1><p>Abrimos de lunes a viernes de 9:00 a 20:00.</p><h2>Aparcamiento</h2>"
        "<p>Hay un aparcamiento público gratuito para pacientes en la calle Colón.</p></main>",
        "es",
    ),
    "/prices": page(
        "Precios",
        "<main><h1>Precios</h1><p>Una limpieza dental cuesta 45 euros. Un implante de titanio cuesta 950 euros."
        "</p></main>",
        "es",
    ),
    "/en/prices": page(
        "Prices",
        "<main><h1>Prices</h1><p>A dental cleaning costs 45 euros. A titanium implant costs 950 euros.</p></main>",
        "en",
    ),
}


def ingest_site(site_url: str) -> None:
    job = ingest.start_ingest(site_url, enqueue=False)
    assert ingest.run_ingest(str(job.pk)).status == "completed"


@pytest.fixture
def indexed(db):
    with serve_site(ROUTES) as site:
        ingest_site(site.url("/"))
        yield site


@pytest.mark.parametrize(
    ("question", "path"),
    [
        ("¿Cuánto cuesta una limpieza?", "/prices"),
        ("¿Tenéis aparcamiento?", "/hours"),
        ("¿Qué horario tenéis los viernes?", "/hours"),
        ("How much is an implant?", "/en/prices"),
    ],
)
def test_full_text_finds_the_page_that_answers(indexed, question, path):
    hits = retrieval.search(question)

    assert hits, question
    assert hits[0].url == indexed.url(path)
    assert hits[0].coverage >= 0.4 and hits[0].similarity is None  # no embeddings configured


def test_interrogatives_are_not_counted_as_words_of_the_question(indexed):
    hits = retrieval.search("¿Cuánto cuesta una limpieza?")

    assert hits[0].url == indexed.url("/prices")
    assert hits[0].coverage == 1.0  # "cuesta" and "limpieza": "cuánto" asks, it is not asked about


def test_a_visitor_word_counts_the_page_word_of_its_concept_in_its_own_language_only(indexed):
    hits = retrieval.search("¿Qué tarifa para un implante?")  # the page says "cuesta"

    assert hits[0].url == indexed.url("/prices")
    assert hits[0].coverage == 1.0
    # "price" is an English word of the same concept: it does not count on the Spanish page.
    assert [hit.coverage for hit in retrieval.search("implante price") if hit.url == indexed.url("/prices")] == [0.5]


def test_a_question_the_site_cannot_answer_finds_nothing(indexed):
    assert retrieval.search("¿Reparáis motos eléctricas?") == []
    assert retrieval.search("   ¿?  ") == []


@pytest.mark.parametrize(
    "question",
    [
        "¿Cuánto cuesta una limpieza? O'Brien \\ 50% C++ 9:00 a:b & | ! <-> ( )",
        "limpieza'' \\' -",
        "'''",
        "%(limit)s %s",
    ],
)
def test_quotes_backslashes_and_tsquery_syntax_in_a_question_are_just_text(indexed, question):
    hits = retrieval.search(question)

    assert all(hit.url.startswith(indexed.base_url) for hit in hits)


def test_a_search_is_two_statements(indexed, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        hits = retrieval.search("¿Cuánto cuesta una limpieza?")

    assert hits and hits[0].url == indexed.url("/prices")


def test_websearch_operators_are_honoured(indexed):
    hits = retrieval.search('"limpieza dental" -implante')

    assert hits == []  # the only page with the phrase also mentions implants


# --- Embeddings (the openai provider, against the fake OpenAI server) ----------------------------------


@pytest.fixture
def openai_embeddings(fake_openai, settings):
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = fake_openai.base_url
    settings.TALIA_EMBED_PROVIDER = "openai"
    settings.TALIA_EMBED_DIM = 384
    return fake_openai


def test_chunks_get_embeddings_in_batches_and_vector_search_finds_them(openai_embeddings, settings, db):
    settings.TALIA_EMBED_BATCH = 2
    with serve_site(ROUTES) as site:
        ingest_site(site.url("/"))

    chunks = list(Chunk.objects.all())
    assert chunks and all(chunk.embedding_space == "openai:text-embedding-3-small:384" for chunk in chunks)
    calls = openai_embeddings.requests_to("/v1/embeddings")
    assert all(call.body["dimensions"] == 384 and len(call.body["input"]) <= 2 for call in calls)
    assert sum(len(call.body["input"]) for call in calls) == len(chunks)
    # The fake's vectors are a hash of the text: only the very same text is similar, which is enough to
    # see the vector side of the fusion at work.
    target = Chunk.objects.get(document__url=site.url("/en/prices"))
    assert list(retrieval.vector_candidates(target.text).items()) == [(target.pk, pytest.approx(1.0, abs=1e-3))]
    hits = retrieval.search("How much is a titanium implant?")
    assert hits[0].chunk_id == target.pk and hits[0].similarity is None  # found by full text alone


def test_vector_search_uses_the_hnsw_index(openai_embeddings, db):
    with serve_site(ROUTES) as site:
        ingest_site(site.url("/"))
    query = (
        Chunk.objects.filter(embedding_space=embeddings.current_space())
        .annotate(distance=retrieval.CosineDistance("embedding", embedding_vector("parking", 384)))
        .order_by("distance")
        .values_list("id", "distance")[: retrieval.CANDIDATES]
    )

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small would otherwise be scanned
        plan = query.explain()

    assert "chunk_embedding_hnsw" in plan


def test_a_change_of_embedding_provider_is_detected_and_fixed_by_reembedding(openai_embeddings, settings, db):
    with serve_site(ROUTES) as site:
        ingest_site(site.url("/"))
    settings.TALIA_EMBED_MODEL = "text-embedding-3-large"

    warnings = [m for m in run_checks(databases=["default"]) if m.id == "rag.W001"]
    assert warnings and "text-embedding-3-large" in warnings[0].msg
    assert retrieval.vector_candidates(Chunk.objects.earliest("pk").text) == {}  # other spaces are never compared

    call_command("reembed_knowledge", stdout=io.StringIO())

    assert not [m for m in run_checks(databases=["default"]) if (m.id or "").startswith("rag.")]
    assert set(Document.objects.values_list("embedding_space", flat=True)) == {"openai:text-embedding-3-large:384"}


@pytest.mark.django_db(transaction=True)  # ALTER TABLE cannot run with the test's pending FK checks
def test_a_change_of_dimension_resizes_the_column(openai_embeddings, settings):
    with serve_site(ROUTES) as site:
        ingest_site(site.url("/"))
    settings.TALIA_EMBED_DIM = 256

    errors = [m for m in run_checks(databases=["default"]) if m.id == "rag.E001"]
    assert errors and "256" in errors[0].msg and "reembed_knowledge" in (errors[0].hint or "")
    with pytest.raises(embeddings.EmbeddingError, match="reembed_knowledge"):
        ingest._checked_embedder()

    try:
        call_command("reembed_knowledge", stdout=io.StringIO())
        assert ingest.embedding_column_dimensions() == 256
        assert len(Chunk.objects.earliest("pk").embedding) == 256
        assert not [m for m in run_checks(databases=["default"]) if (m.id or "").startswith("rag.")]
    finally:
        settings.TALIA_EMBED_DIM = 384
        call_command("reembed_knowledge", stdout=io.StringIO())  # leave the column as the migration made it


@pytest.mark.parametrize("lexeme", ["o'brien", "c:\\dir", "a''b", "\\", "x|y&!z", "a b"])
def test_a_lexeme_is_quoted_into_a_tsquery_exactly(db, lexeme):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array_to_tsvector(ARRAY[%s]) @@ %s::tsquery, array_to_tsvector(ARRAY['other']) @@ %s::tsquery",
            [lexeme, retrieval._quoted(lexeme), retrieval._quoted(lexeme)],
        )
        assert cursor.fetchone() == (True, False)
