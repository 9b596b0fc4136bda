"""The widget script and the demo page, checked from disk: size, syntax, safe DOM APIs, strings, embed tag."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.template.loader import render_to_string
from django.utils import translation

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "static" / "widget" / "widget.js"
DEMO = ROOT / "templates" / "channels_web" / "demo.html"
MAX_GZIPPED_BYTES = 15 * 1024


@pytest.fixture(scope="module")
def source() -> str:
    return WIDGET.read_text(encoding="utf-8")


def strings(source: str) -> dict[str, dict[str, str]]:
    """The `const T = {es: {...}, en: {...}};` dictionary, each entry `key: 'text'` (no quotes inside)."""
    block = re.search(r"const T = \{\n(.*?)\n  \};", source, re.S)
    assert block, "the string dictionary `const T = {...};` is missing"
    found: dict[str, dict[str, str]] = {}
    for locale, body in re.findall(r"^    (es|en): \{\n(.*?)\n    \}", block.group(1), re.S | re.M):
        entry = re.compile(r"(\w+): '([^'\\]*)'")
        # Nothing but entries and separators: a malformed entry cannot hide from the checks below.
        assert not entry.sub("", body).replace(",", "").strip(), f"unparsed text in the {locale} strings"
        found[locale] = dict(entry.findall(body))
    return found


def test_widget_is_small(source: str) -> None:
    size = len(gzip.compress(source.encode("utf-8"), compresslevel=9))
    assert size <= MAX_GZIPPED_BYTES, f"widget.js is {size} bytes gzipped, over {MAX_GZIPPED_BYTES}"


def test_widget_parses() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js (20+) to syntax-check static/widget/widget.js")
    result = subprocess.run([node, "--check", str(WIDGET)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_widget_never_parses_html_or_evaluates_code(source: str) -> None:
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\s*\.\s*write|\beval\s*\(|new\s+Function\b"
        r"|createContextualFragment|DOMParser|srcdoc|setTimeout\(\s*['\"`]|setInterval\(\s*['\"`]"
    )
    assert not [m.group(0) for m in forbidden.finditer(source)]


def test_widget_is_one_dependency_free_iife(source: str) -> None:
    code = re.sub(r"/\*.*?\*/", "", source, flags=re.S).strip()
    assert code.startswith("(() => {") and code.endswith("})();")
    assert not re.search(r"\b(import|require)\s*\(|^\s*import\s", code, re.M)


def test_strings_exist_in_both_languages(source: str) -> None:
    dictionary = strings(source)
    assert set(dictionary) == {"es", "en"}
    assert dictionary["es"].keys() == dictionary["en"].keys()
    for key, text in dictionary["es"].items():
        placeholders = sorted(re.findall(r"\{(\w)\}", text))
        assert placeholders == sorted(re.findall(r"\{(\w)\}", dictionary["en"][key])), key
    # t() is only ever called with a literal key, so every key in use is visible here.
    calls = re.findall(r"\bt\(([^,)]*)", source)
    assert calls
    used = set()
    for argument in calls:
        literal = re.fullmatch(r"'(\w+)'", argument.strip())
        assert literal, f"t() called with a non-literal key: {argument!r}"
        used.add(literal.group(1))
    assert used <= dictionary["es"].keys(), used - dictionary["es"].keys()
    assert not dictionary["es"].keys() - used, f"unused strings: {dictionary['es'].keys() - used}"


def test_widget_follows_the_contract(source: str) -> None:
    for needle in (
        "/api/webchat/messages",
        "/api/webchat/handoff",
        "/api/webchat/close",
        "/api/webchat/consent",
        "/api/webchat/rating",
        "/api/webchat/transcript",
        "/api/webchat/config",
        "/api/webchat/details",
        "/ws/webchat/?session_id=",
        "X-TalIA-Token",
        "client_message_id",
        "'talia.session'",
        "type: 'resume'",
        "type: 'typing'",
        "attachShadow({ mode: 'open' })",
        "rel: 'noopener noreferrer nofollow'",
        "crypto.getRandomValues",
        "window.TalIA",
        "end_requested",
    ):
        assert needle in source, needle
    for event in (
        "message.new",
        "typing",
        "handoff.requested",
        "handoff.accepted",
        "conversation.closed",
        "end.declined",
        "error",
    ):
        assert f"'{event}'" in source, event


def test_demo_embeds_the_widget_like_a_customer() -> None:
    template = DEMO.read_text(encoding="utf-8")
    assert "{% extends" not in template
    tag = re.search(r"<script src=\"\{\{ widget_url \}\}\"[^>]*></script>", template)
    assert tag, 'the demo must embed <script src="{{ widget_url }}" ...>'
    assert 'data-base-url="{{ base_url }}"' in tag.group(0)
    assert '{% if token %}data-token="{{ token }}"{% endif %}' in tag.group(0)
    assert 'data-locale="{{ LANGUAGE_CODE }}"' in tag.group(0)


@pytest.mark.parametrize("token", ["", "public-token"])
def test_demo_renders(token: str) -> None:
    context = {"widget_url": "https://talia.example/widget.js", "base_url": "https://talia.example", "token": token}
    with translation.override("en"):
        html = render_to_string("channels_web/demo.html", context)
    tag = re.search(r"<script src=\"https://talia\.example/widget\.js\"[^>]*>", html)
    assert tag
    assert 'data-base-url="https://talia.example"' in tag.group(0)
    assert 'data-locale="en"' in tag.group(0)
    assert ('data-token="public-token"' in tag.group(0)) is bool(token)
    assert "What is TalIA?" in html
