"""The shared text mechanics (talia/text.py)."""

from __future__ import annotations

from talia.text import collapse_whitespace, shorten


def test_collapse_whitespace():
    assert collapse_whitespace("  Hola,\n\tqué\u00a0tal  ") == "Hola, qué tal"


def test_shorten_keeps_short_text_and_cuts_long_text_at_a_word():
    assert shorten("a  short\ntext", 40) == "a short text"
    assert shorten("aaa bbb ccc", 8) == "aaa bbb…"
    assert shorten("one, two, three", 11) == "one, two…"  # no comma left before the ellipsis
    assert len(shorten("word " * 100, 60)) <= 60


def test_shorten_cuts_inside_a_first_word_longer_than_the_limit():
    assert shorten("https://example.com/a/very/long/path", 10) == "https://e…"
