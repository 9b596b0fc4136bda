"""The documentation cites only files that exist.

Every backticked token in README.md, docs/*.md and bench/README.md that looks like a path in this
repository (it contains a `/` and either ends in a source or document suffix or starts with one of the
repository's top-level directories) must name a file or directory of the checkout. A renamed or removed
module then fails here instead of leaving the docs pointing at nothing. The exceptions are paths created
at run time, listed explicitly below; URLs and routes (`/console/`, `https://...`) are not paths.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SUFFIXES = (".py", ".md", ".js", ".html", ".css")
TOP_LEVEL = ("var/", *(f"{p.name}/" for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")))
# Created at run time (`make run`, the benchmarks), never part of the checkout.
RUNTIME_PREFIXES = ("var/",)

BACKTICKED = re.compile(r"`([^`\s]+)`")


def cited_paths(text: str) -> set[str]:
    paths = set()
    for token in BACKTICKED.findall(text):
        token = token.rstrip(".,:;")
        if "/" not in token or token.startswith(("/", ".", "<")) or "://" in token:
            continue  # a route, a relative reference or a URL
        if any(ch in token for ch in "<>*?{}()=#"):
            continue  # a pattern or an expression, not a file
        if token.endswith(SUFFIXES) or token.startswith(TOP_LEVEL):
            paths.add(token)
    return paths


def test_the_extractor_sees_the_paths_the_docs_cite() -> None:
    # Guards the extractor itself: if it stopped finding paths, the test below would pass vacuously.
    sample = "see `conversations/state.py`, `templates/400.html`, `/console/`, `https://x.example/a.js`"
    assert cited_paths(sample) == {"conversations/state.py", "templates/400.html"}
    assert "conversations/state.py" in cited_paths((ROOT / "README.md").read_text(encoding="utf-8"))


def test_every_cited_path_exists() -> None:
    missing = []
    for doc in DOCS:
        for path in sorted(cited_paths(doc.read_text(encoding="utf-8"))):
            if path.startswith(RUNTIME_PREFIXES):
                continue
            if not (ROOT / path.rstrip("/")).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {path}")
    assert not missing, "the docs cite paths that do not exist:\n" + "\n".join(missing)
