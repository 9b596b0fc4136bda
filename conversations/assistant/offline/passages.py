"""The offline engine's answer from the knowledge base: the sentences of the found passages that best match
the question, whole.

Invariants:
- An answer is made of complete sentences of one passage, in the page's order, never cut mid-word: prices,
  times and numbers ("49,90 €", "9:30", "S.L.") come out as the page wrote them.
- Only a sentence longer than the limit on its own is shortened, at a word boundary, with "…".
- Sentences are scored by the question's words they hold (folded, crudely stemmed, rarer words weigh
  more, question and stop words ignored), with a small preference for the passage retrieval ranked first
  and, for a question about a price, a time or a quantity, for sentences with figures.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from talia.text import collapse_whitespace, shorten
from talia.understanding import plain_words

LIMIT = 320
# How close to the best sentence's score a neighbouring sentence must come to be quoted with it.
CLOSE = 0.8

# A sentence ends at . ! ? … (or a line break) followed by a space and a capital, a figure or an opening
# mark: "9.30" and "S.L. de" do not end one.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZÁÉÍÓÚÜÑ\d\"«“¿¡(])|\n+")
_ABBREVIATION = re.compile(
    r"(?:\b[A-ZÁÉÍÓÚÑ]|\b(?:Sr|Sra|Srta|Dr|Dra|Av|Avda|etc|p\. ej|e\.g|i\.e|Mr|Mrs|Ms|St|núm|Núm|tel|Tel))\.$"
)
_ENDED = re.compile(r"[.!?…»\")]$")
_FIGURE_QUESTION = re.compile(
    r"\b(?:cuanto|cuanta|cuantos|cuantas|cuesta|cuestan|precio|precios|tarifa|tarifas|coste|vale|valen|horario|"
    r"hora|horas|abren|abris|abre|cierran|cuando|dias|how much|how many|price|prices|cost|costs|fee|fees|hours|"
    r"open|opening|close|closing|when|what time)\b"
)
_FIGURE = re.compile(r"\d")
_STOP = frozenset(
    """
    a al algo algun alguna alguno ante con como cual cuales de del donde el ella ellos en entre era es esa ese
    eso esta este esto estos hay la las le les lo los mas me mi mis muy nos o os para pero por que quien se
    ser si sin sobre su sus te tiene tienen tu tus un una uno unos y ya yo vosotros usted ustedes puedo puede
    pueden podeis quiero quisiera saber hola buenas gracias
    the an and are as at be by can could do does did for from have has how i if in is it its me my of on or
    our please that the their them there they this to was we what when where which who why will with would
    you your hello hi thanks
    """.split()  # noqa: SIM905 (a word list reads better as text)
)


@dataclass(frozen=True)
class Passage:
    text: str
    rank: int  # 0 for the passage retrieval ranked first


def _stem(word: str) -> str:
    """A crude stem shared by Spanish and English inflections: 'cuesta'/'cuestan', 'precio'/'precios'."""
    return word[:5] if len(word) > 5 else word.rstrip("s") if len(word) > 3 else word


def _terms(text: str) -> list[str]:
    return [_stem(word) for word in plain_words(text).split() if word not in _STOP and len(word) > 1]


def sentences(text: str) -> list[str]:
    """The passage's sentences, each with its whitespace collapsed; an abbreviation does not end one."""
    pieces: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        piece = text[start : end.start()]
        if end.group(0).startswith("\n") or not _ABBREVIATION.search(piece):
            pieces.append(piece)
            start = end.end()
    pieces.append(text[start:])
    return [sentence for piece in pieces if (sentence := collapse_whitespace(piece))]


def best_sentences(question: str, passages: list[Passage], limit: int = LIMIT) -> tuple[str, int]:
    """The sentence(s) of `passages` that best answer `question` and the rank of their passage; ('', 0)
    when no sentence shares a word with the question."""
    asked = set(_terms(question))
    if not asked:
        return "", 0
    split = [(passage, sentences(passage.text)) for passage in passages]
    # Each sentence's terms, read once: they serve both the document frequencies and the scores.
    terms_of = [[set(_terms(sentence)) for sentence in found] for _, found in split]
    document_frequency = Counter(term for found in terms_of for terms in found for term in terms)
    total = sum(len(found) for _, found in split) or 1
    wants_figures = bool(_FIGURE_QUESTION.search(plain_words(question)))
    scored: list[tuple[float, int, list[str], list[float]]] = []  # per passage: best, its index, sentences, scores
    for (passage, found), found_terms in zip(split, terms_of, strict=True):
        scores = []
        for sentence, terms in zip(found, found_terms, strict=True):
            shared = asked & terms
            score = sum(math.log(1 + total / document_frequency[term]) for term in shared)
            score *= 1.0 - 0.1 * min(passage.rank, 3)
            if shared and wants_figures and _FIGURE.search(sentence):
                score *= 1.3
            scores.append(score)
        if scores and max(scores) > 0:
            scored.append((max(scores), passage.rank, found, scores))
    if not scored:
        return "", 0
    best, rank, found, scores = max(scored, key=lambda entry: (entry[0], -entry[1]))
    index = scores.index(best)
    first = last = index
    # A neighbour that answers nearly as well goes along ("Horario: de lunes a viernes… Los sábados…").
    if index + 1 < len(found) and scores[index + 1] >= CLOSE * best:
        last = index + 1
    elif index > 0 and scores[index - 1] >= CLOSE * best:
        first = index - 1
    # A heading or a lead-in ("Horario de invierno", "Precios:") takes the sentence after it along.
    if not _ENDED.search(found[last]) and last + 1 < len(found):
        last += 1
    return _fit(" ".join(found[first : last + 1]), limit), rank


def opening(text: str, limit: int = LIMIT) -> str:
    """The passage's first whole sentences that fit in `limit` (the first one shortened if it alone does not)."""
    found = sentences(text)
    while len(found) > 1 and not _ENDED.search(found[0]):  # a heading says less than what follows it
        found = found[1:]
    if not found:
        return ""
    kept = [found[0]]
    for sentence in found[1:]:
        if len(" ".join([*kept, sentence])) > limit:
            break
        kept.append(sentence)
    return _fit(" ".join(kept), limit)


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else shorten(text, limit)
