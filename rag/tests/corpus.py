"""A generated knowledge base of any size, for the index-usage tests and `bench/run.py retrieval`.

Pages in Spanish and English (one in eight without a recognised language, indexed with `simple`), each
of a few chunks of 60 to 180 words drawn from a Zipf distribution over a vocabulary that starts with the
demo site's own words (so the frequent words are real words, stop words included, which the Postgres
configurations stem and drop as on a real site) and goes on with made-up words for the long tail. Each
page has a topic: its rarer words come mostly from the topic's slice of the vocabulary, and its
embeddings (when asked for) lie near the topic's centroid, so both sides of hybrid retrieval have
structure to find. Rows are written with COPY and one INSERT ... SELECT that builds the full-text
vectors as the ingest does (heading weight A, text weight B, the page's configuration); then ANALYZE.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.db import connection, transaction

from rag import retrieval
from rag.demo_site import PAGES

CHUNKS_PER_PAGE = 5
TOPICS = 64
SPACE = "bench:generated:384"
DIMENSIONS = 384
TAIL_WORDS = 20_000
SITE = "https://corpus.example/"
LANGS = [("es", "spanish"), ("en", "english"), ("", "simple")]
SYLLABLES = ["ba", "ce", "di", "fo", "gu", "la", "me", "ni", "po", "ru", "sa", "te", "vi", "zo", "tra", "pre"]
TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "rag" / "demo_site"
WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)


@dataclass(frozen=True)
class Question:
    text: str
    config: str  # the configuration of the page it was drawn from
    page: int


@cache
def vocabulary(lang: str) -> tuple[list[str], list[float]]:
    """Words of one language, most frequent first, and their cumulative Zipf weights."""
    counts: dict[str, int] = {}
    for page in PAGES.values():
        if page.lang != lang:
            continue
        html = (TEMPLATES / Path(page.template).name).read_text()
        text = re.sub(r"\{[%{#].*?[%}#]\}|<[^>]+>", " ", html)
        for word in WORD.findall(text.lower()):
            counts[word] = counts.get(word, 0) + 1
    words = sorted(counts, key=lambda word: (-counts[word], word))
    rng = random.Random(f"tail-{lang}")
    tail: set[str] = set()
    while len(tail) < TAIL_WORDS:
        tail.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 5))))
    words += sorted(tail - set(words))
    weights = list(itertools.accumulate(1 / (rank + 2) for rank in range(len(words))))
    return words, weights


def topic_words(lang: str, topic: int) -> list[str]:
    """The words of a topic's slice of the vocabulary, most frequent first."""
    words, _weights = vocabulary(lang)
    size = (len(words) - 1000) // TOPICS
    return words[1000 + topic * size : 1000 + (topic + 1) * size]


@cache
def _topic_weights(size: int) -> list[float]:
    return list(itertools.accumulate(1 / (rank + 3) for rank in range(size)))


def _words(rng: random.Random, lang: str, topic: int, count: int) -> list[str]:
    """`count` words: every other one from the whole vocabulary, the rest from the topic's own slice of
    the tail (both Zipf-distributed)."""
    words, weights = vocabulary(lang)
    own_words = topic_words(lang, topic)
    common = rng.choices(words, cum_weights=weights, k=(count + 1) // 2)
    own = rng.choices(own_words, cum_weights=_topic_weights(len(own_words)), k=count // 2)
    return [word for pair in itertools.zip_longest(common, own) for word in pair if word is not None]


def generate(chunks: int, *, seed: int = 13, embeddings: bool = False, site: str = SITE) -> None:
    """Add a generated site of about `chunks` chunks to the knowledge base (the tables must exist)."""
    from django.utils import timezone

    from rag.models import Document, KnowledgeSource

    rng = random.Random(seed)
    source = KnowledgeSource.objects.create(site_url=site, allowed_domain="corpus.example", max_pages=chunks)
    pages = max(1, chunks // CHUNKS_PER_PAGE)
    now = timezone.now()
    documents = Document.objects.bulk_create(
        Document(
            source=source,
            url=f"{site}page/{i}",
            title=f"Page {i}",
            language=LANGS[_lang_of(i)][0],
            content_hash=f"{seed}-{i}",
            fetched_at=now,
            embedding_space=SPACE if embeddings else "",
        )
        for i in range(pages)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE corpus_rows (document_id bigint, position int, heading text, text text, "
            "config text, topic int) ON COMMIT DROP"
        )
        with cursor.cursor.copy("COPY corpus_rows FROM STDIN") as copy:
            for i, document in enumerate(documents):
                lang, config = LANGS[_lang_of(i)]
                topic = i % TOPICS
                for position in range(CHUNKS_PER_PAGE):
                    heading = " ".join(_words(rng, lang or "en", topic, 3)).capitalize()
                    body = " ".join(_words(rng, lang or "en", topic, rng.randint(60, 180)))
                    copy.write_row((document.pk, position, heading, f"{heading}\n{body}.", config, topic))
        cursor.execute(
            "CREATE TEMP TABLE corpus_topics ON COMMIT DROP AS SELECT t AS topic, "
            "ARRAY(SELECT random() - 0.5 FROM generate_series(1, %s) WHERE t IS NOT NULL) AS centre "
            "FROM generate_series(0, %s) AS t",
            [DIMENSIONS, TOPICS - 1],
        )
        cursor.execute(
            "INSERT INTO rag_chunk (document_id, position, heading, text, search_config, search_vector, "
            "embedding, embedding_space) "
            "SELECT document_id, position, heading, text, config, "
            "setweight(to_tsvector(config::regconfig, heading), 'A') || "
            "setweight(to_tsvector(config::regconfig, text), 'B'), "
            "CASE WHEN %(embeddings)s THEN (SELECT ARRAY(SELECT t.centre[d] + (random() - 0.5) * 0.8 "
            "FROM generate_series(1, %(dimensions)s) AS d)::vector FROM corpus_topics t WHERE t.topic = r.topic) "
            "END, %(space)s FROM corpus_rows r",
            {"embeddings": embeddings, "dimensions": DIMENSIONS, "space": SPACE if embeddings else ""},
        )
        cursor.execute("DROP TABLE corpus_rows, corpus_topics")
        cursor.execute("ANALYZE rag_chunk")
    retrieval.forget_statistics()


def _lang_of(page: int) -> int:
    return 2 if page % 8 == 7 else page % 2


def questions(count: int, chunks: int, *, seed: int = 7) -> list[Question]:
    """Questions drawn from the generated pages' vocabulary: a few common words (stop words among them)
    around two to four of a page topic's rarer words, which one chunk holds together only sometimes."""
    rng = random.Random(seed)
    pages = max(1, chunks // CHUNKS_PER_PAGE)
    drawn = []
    for _ in range(count):
        page = rng.randrange(pages)
        lang_index = _lang_of(page)
        lang = ("es", "en", "en")[lang_index]
        words, _weights = vocabulary(lang)
        common = rng.sample(words[:60], 2)
        rare = rng.sample(topic_words(lang, page % TOPICS)[:60], rng.randint(2, 4))
        text = " ".join([common[0], *rare[: len(rare) // 2], common[1], *rare[len(rare) // 2 :]]) + "?"
        drawn.append(Question(text, LANGS[lang_index][1], page))
    return drawn


def page_vector(page: int, site: str = SITE) -> list[float]:
    """A question's embedding for the bench: the mean of its page's chunk embeddings."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT avg(c.embedding)::text FROM rag_chunk c JOIN rag_document d ON d.id = c.document_id "
            "WHERE d.url = %s",
            [f"{site}page/{page}"],
        )
        row = cursor.fetchone()
    return [float(x) for x in row[0].strip("[]").split(",")] if row and row[0] else []
