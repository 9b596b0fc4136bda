"""Split extracted sections into overlapping chunks sized for embedding and retrieval."""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rag.extract import Section
from talia.text import collapse_whitespace

SENTENCE_END_RE = re.compile(r"(?<=[.!?…])\s+")
# Where a sentence or a line starts inside a chunk's text, and where any word starts.
SENTENCE_START_RE = re.compile(r"(?:(?<=[.!?…])\s+|\n)(?=\S)")
WORD_START_RE = re.compile(r"\s(?=\S)")
# Room for a shortened heading line and a few words of text.
MIN_CHUNK_CHARS = 20


@dataclass(frozen=True)
class Chunk:
    """A piece of a page: its position in the page, the heading it falls under, and its text.

    The text starts with the heading line, when there is one, so that a retrieved chunk carries its context.
    """

    position: int
    heading: str
    text: str


def chunk_sections(sections: Iterable[Section], *, max_chars: int = 1200, overlap_chars: int = 200) -> list[Chunk]:
    """Pack each section's paragraphs into chunks of at most `max_chars` characters, heading line included.

    Paragraphs too long for one chunk are split at sentence ends, then between words; only a single
    word longer than a chunk is cut. Consecutive chunks of one section share about `overlap_chars`
    characters: whole sentences (or else words) from the end of the previous chunk. Sections without
    paragraphs are skipped. The result depends on the input alone.
    """
    if max_chars < MIN_CHUNK_CHARS or not 0 <= overlap_chars <= max_chars // 2:
        raise ValueError(f"need max_chars >= {MIN_CHUNK_CHARS} and 0 <= overlap_chars <= max_chars / 2")
    chunks: list[Chunk] = []
    for section in sections:
        heading = collapse_whitespace(section.heading)
        # A very long heading is shortened in the text so that the paragraphs keep most of the room.
        prefix = _shorten(heading, max_chars // 4) + "\n" if heading else ""
        for body in _section_bodies(section.paragraphs, max_chars - len(prefix), overlap_chars):
            chunks.append(Chunk(position=len(chunks), heading=heading, text=prefix + body))
    return chunks


def _section_bodies(paragraphs: list[str], limit: int, overlap_chars: int) -> list[str]:
    # Pieces leave room for the overlap and its separator, so the overlap always fits in front of one.
    piece_limit = max(1, limit - overlap_chars - 1)
    pieces: list[tuple[str, str]] = []  # (separator from the previous piece, text)
    for paragraph in paragraphs:
        for index, piece in enumerate(_split_paragraph(collapse_whitespace(paragraph), piece_limit)):
            pieces.append((" " if index else "\n", piece))

    bodies: list[str] = []
    body = ""
    for separator, piece in pieces:
        if not body:
            body = piece
        elif len(body) + len(separator) + len(piece) <= limit:
            body += separator + piece
        else:
            bodies.append(body)
            overlap = _tail(body, min(overlap_chars, limit - len(separator) - len(piece)))
            body = overlap + separator + piece if overlap else piece
    if body:
        bodies.append(body)
    return bodies


def _split_paragraph(paragraph: str, limit: int) -> list[str]:
    """Split at sentence ends, then between words, then inside words, into pieces of at most `limit`."""
    if len(paragraph) <= limit:
        return [paragraph] if paragraph else []
    fragments: list[str] = []
    for sentence in SENTENCE_END_RE.split(paragraph):
        if len(sentence) <= limit:
            fragments.append(sentence)
            continue
        for word in sentence.split(" "):
            fragments.extend(word[start : start + limit] for start in range(0, len(word), limit))
    return _pack(fragments, limit)


def _pack(fragments: list[str], limit: int) -> list[str]:
    """Join consecutive fragments with spaces into as few pieces of at most `limit` as possible, in order."""
    pieces: list[str] = []
    for fragment in fragments:
        if pieces and len(pieces[-1]) + 1 + len(fragment) <= limit:
            pieces[-1] += " " + fragment
        else:
            pieces.append(fragment)
    return pieces


def _tail(text: str, limit: int) -> str:
    """The longest end of `text`, at most `limit` long, that starts a sentence; failing that, a word."""
    if limit <= 0:
        return ""
    for boundary in (SENTENCE_START_RE, WORD_START_RE):
        for match in boundary.finditer(text):
            if len(text) - match.end() <= limit:
                return text[match.end() :]
    return ""


def _shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut + "…"
