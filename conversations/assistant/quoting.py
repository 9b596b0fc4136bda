"""Untrusted text (a web page's title or passage) goes to the model quoted, as data and never as orders.

A tool wraps every such string in `quoted()`: one marker line above, one below, and between them the text
with every run of three or more `<` or `>` cut to two, after NFKC folding (so full-width or other
look-alike angle brackets count too). The text therefore cannot contain either marker, cannot close its
quote early and cannot open a new one, however it is crafted (markers hidden inside markers included).
Code that shows such a string to people (citations, the offline engine's answers) takes it out with
`unquoted()`. Tool notes tell the model that quoted text is data.
"""

from __future__ import annotations

import re
import unicodedata

QUOTE_OPEN, QUOTE_CLOSE = "<<<QUOTED PAGE TEXT", "QUOTED PAGE TEXT>>>"
_RUNS = re.compile(r"<{3,}|>{3,}")


def defused(text: str) -> str:
    """`text` with no run of three angle brackets left, so no quote marker can appear in it."""
    return _RUNS.sub(lambda run: run.group(0)[:2], unicodedata.normalize("NFKC", text))


def quoted(text: str) -> str:
    return f"{QUOTE_OPEN}\n{defused(text)}\n{QUOTE_CLOSE}"


def unquoted(text: str) -> str:
    """The text inside one `quoted()` string; anything else comes back as it is."""
    head, tail = QUOTE_OPEN + "\n", "\n" + QUOTE_CLOSE
    if text.startswith(head) and text.endswith(tail) and len(text) >= len(head) + len(tail):
        return text[len(head) : -len(tail)]
    return text
