import re
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from selectolax.lexbor import LexborHTMLParser

from rag.demo_site import PAGES, page_url
from rag.extract import ENGLISH_STOPWORDS, SPANISH_STOPWORDS
from rag.tests.questions import QUESTIONS, UNANSWERABLE

pytestmark = [pytest.mark.urls("rag.tests.demo_urls")]

SITEMAP_NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}
WORD_RE = re.compile(r"\w+")
# Words that carry no topic: a question may share these with the site and still be off-topic.
FUNCTION_WORDS = ENGLISH_STOPWORDS | SPANISH_STOPWORDS | {"a", "my", "qué", "which"}


def parse(client, path: str) -> LexborHTMLParser:
    response = client.get(page_url(path))
    assert response.status_code == 200, path
    return LexborHTMLParser(response.content.decode())


def sitemap_locations(xml: bytes) -> list[str]:
    root = ElementTree.fromstring(xml)  # noqa: S314 (our own response, not untrusted input)
    return [loc.text or "" for loc in root.findall("sm:url/sm:loc", SITEMAP_NS)]


def main_text(client, path: str) -> str:
    main = parse(client, path).css_first("main")
    assert main is not None, path
    return main.text(separator=" ")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_in_its_language(client, path):
    tree = parse(client, path)
    html = tree.css_first("html")
    assert html is not None
    assert html.attributes["lang"] == PAGES[path].lang


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_one_title_and_a_few_hundred_words(client, path):
    tree = parse(client, path)
    assert len(tree.css("main h1")) == 1
    assert tree.css("main h2")
    assert 250 <= len(WORD_RE.findall(main_text(client, path))) <= 600


@pytest.mark.parametrize("path", ["nope/", "servicios", "en/servicios/", "_base/", "../_base.html", "sitemap.xml/"])
def test_unknown_path_is_not_found(client, path):
    assert client.get(f"/demo-site/{path}").status_code == 404


def test_every_page_links_to_its_translation():
    for path, page in PAGES.items():
        translation = PAGES[page.translation]
        assert translation.lang != page.lang
        assert translation.translation == path


def test_sitemap_lists_exactly_the_pages_with_absolute_urls(client):
    response = client.get("/demo-site/sitemap.xml")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert sorted(sitemap_locations(response.content)) == sorted(f"http://testserver{page_url(path)}" for path in PAGES)


def test_every_internal_link_leads_to_a_page(client):
    targets: set[str] = set()
    for path in PAGES:
        for anchor in parse(client, path).css("a[href]"):
            href = anchor.attributes["href"] or ""
            parts = urlsplit(href)
            if parts.scheme in {"tel", "mailto"}:
                continue
            assert not parts.scheme and not parts.netloc, f"{path} links off-site to {href}"
            targets.add(parts.path)

    assert targets == {page_url(path) for path in PAGES}
    for target in targets:
        assert client.get(target).status_code == 200, target


def test_every_question_points_to_a_page_of_its_language(client):
    locations = {urlsplit(loc).path for loc in sitemap_locations(client.get("/demo-site/sitemap.xml").content)}
    by_url = {page_url(path): page for path, page in PAGES.items()}
    for question, locale, expected_path in QUESTIONS:
        assert expected_path in locations, question
        assert by_url[expected_path].lang == locale, question


def test_unanswerable_questions_share_no_content_word_with_the_site(client):
    site_words = {word for path in PAGES for word in WORD_RE.findall(main_text(client, path).lower())}
    for question, _locale in UNANSWERABLE:
        content_words = {word for word in WORD_RE.findall(question.lower()) if len(word) > 3} - FUNCTION_WORDS
        assert not content_words & site_words, question
