"""Small text mechanics shared by every app: one helper each, so they behave the same everywhere."""

from __future__ import annotations

import textwrap

ELLIPSIS = "…"


def collapse_whitespace(text: str) -> str:
    """Turn every run of whitespace (newlines and tabs included) into one space and trim the ends."""
    return " ".join(text.split())


def shorten(text: str, limit: int, placeholder: str = ELLIPSIS) -> str:
    """`text` with its whitespace collapsed and, if longer than `limit` characters, cut at a word boundary
    to fit with `placeholder` at the end (`textwrap.shorten`). A first word longer than the limit (a URL,
    an email) is cut inside rather than lost; punctuation left before the placeholder goes."""
    text = collapse_whitespace(text)
    if len(text) <= limit:
        return text
    short = textwrap.shorten(text, limit, placeholder=placeholder)
    kept = short[: -len(placeholder)] if short.endswith(placeholder) else short
    if not kept.strip():
        kept = text[: max(0, limit - len(placeholder))]
    return kept.rstrip(" ,;:") + placeholder
