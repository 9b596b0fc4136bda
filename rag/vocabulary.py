"""A small thesaurus of how visitors ask, for the full-text side of retrieval (`rag/retrieval.py`).

Visitors ask in their own words ("¿Abren el domingo?", "Do you see kids?", "What do you charge…?"),
and a business's page answers in its own ("Domingo: cerrado", "Children's dentistry", a price list).
Stemming joins the forms of one word, not different words for one thing, and embeddings (which would)
are off by default. So a question's word listed here is looked up together with the other words of its
concept: a passage that holds any of them holds that word of the question, for matching, ranking and
the coverage bar alike. Only the question is expanded, never the index, so a change here needs no
re-ingest.

This is deliberately small and general: the intents any small business's visitors have (prices, opening
hours, where, children, contact, parking, payment in instalments, discounts, guarantees, repairs,
bookings), in Spanish and English, each language looked up in its own pages only. It is not a list of
a given site's terms, and it must never be grown to make one test question pass.

Interrogatives ("cuánto", "qué", "when"...) say what kind of answer is wanted, not what about: they are
left out of the question's words (most of English's are stop words already).
"""

from __future__ import annotations

import unicodedata

# Interrogatives with no concept of their own: not counted as the question's words.
QUESTION_WORDS: dict[str, str] = {
    "es": "cuánto cuánta cuántos cuántas qué cuál cuáles cómo cuándo dónde quién quiénes",
    "en": "how what which when where who whom why much many",
}

# Concepts: the words a visitor may ask with and a page may answer with, per language.
CONCEPTS: list[dict[str, str]] = [
    {  # what it costs
        "es": "precio precios tarifa tarifas cuesta cuestan costar coste cobrar cobráis cobran cobramos",
        "en": "price prices cost costs charge charges rate rates fee fees",
    },
    {  # when it is open
        "es": "horario horarios hora horas abrir abren abrís abre abrimos abierto abiertos cerrar cerráis "
        "cierran cierra cerramos cerrado",
        "en": "hours time times open opens opening close closes closed closing",
    },
    {  # where it is
        "es": "dirección ubicación situados",
        "en": "address location located",
    },
    {  # children
        "es": "niño niña niños niñas hijo hija hijos hijas crío cría críos crías infantil infantiles menor menores",
        "en": "child children kid kids son daughter youngster youngsters paediatric pediatric",
    },
    {  # writing to the business
        "es": "correo email mail",
        "en": "email mail",
    },
    {  # leaving the car
        "es": "aparcar aparcamiento aparcamientos parking",
        "en": "park parking",
    },
    {  # paying over time
        "es": "plazos financiar financiación fraccionar mensualidades cuotas",
        "en": "instalment instalments installment installments finance financing",
    },
    {  # paying less
        "es": "descuento descuentos rebaja rebajas oferta ofertas",
        "en": "discount discounts deal deals offer offers",
    },
    {  # guarantees
        "es": "garantía garantías",
        "en": "guarantee guarantees guaranteed warranty warranties",
    },
    {  # repairs
        "es": "arreglar arreglo arreglos arregláis reparar reparación reparaciones reparáis",
        "en": "fix fixing repair repairs mend",
    },
    {  # the season
        "es": "verano julio agosto",
        "en": "summer july august",
    },
    {  # booking a time
        "es": "cita citas reserva reservas reservar",
        "en": "appointment appointments booking bookings book",
    },
    # English plurals the stemmer does not join to their singular
    {"es": "", "en": "tooth teeth"},
    {"es": "", "en": "person people persons"},
    {"es": "", "en": "man men"},
    {"es": "", "en": "woman women"},
    {"es": "", "en": "foot feet"},
]


def _key(word: str) -> str:
    """Lower case without accents: "Cobráis" and "cobrais" are looked up alike."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char) or char == "\u0303")  # keep ñ


def _table(lang: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for concept in CONCEPTS:
        for word in concept[lang].split():
            table[_key(word)] = " ".join(sorted({*table.get(_key(word), "").split(), *concept[lang].split()}))
    for word in QUESTION_WORDS[lang].split():
        table.setdefault(_key(word), "")
    return table


TABLES = {lang: _table(lang) for lang in ("es", "en")}
# The thesauri each text-search configuration uses (`simple` pages have no known language: both).
LANGUAGES_OF = {"spanish": ("es",), "english": ("en",), "simple": ("es", "en")}


def expansions(words: list[str], config: str) -> list[tuple[str, str]]:
    """(word, the words of its concepts) for each of `words` the thesaurus of `config` knows; the
    words are "" for an interrogative, which is to be left out."""
    found: dict[str, str] = {}
    for word in words:
        key = _key(word)
        for lang in LANGUAGES_OF[config]:
            if key in TABLES[lang]:
                found[word] = " ".join(filter(None, [found.get(word, ""), TABLES[lang][key]]))
    return list(found.items())
