"""The widget script: TalIA's pages load it from a versioned URL cached for a year; the bare `/widget.js`
that customers paste into their sites is cached briefly, so a release reaches them within minutes."""

from __future__ import annotations

import re

import pytest

from channels_web import views


def widget_src(html: str) -> str:
    match = re.search(r'<script src="http://testserver(/widget\.js[^"]*)"', html)
    assert match, html[:2000]
    return match.group(1)


@pytest.mark.parametrize("page", ["/", "/chat/"])
def test_pages_load_the_widget_from_a_versioned_url_cached_for_a_year(client, db, page):
    src = widget_src(client.get(page).content.decode())

    assert re.fullmatch(r"/widget\.js\?v=[0-9a-f]{12}", src), src
    response = client.get(src)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    cache = response["Cache-Control"]
    assert "max-age=31536000" in cache and "immutable" in cache and "public" in cache


@pytest.mark.parametrize("query", ["", "?v=000000000000"])
def test_the_bare_or_a_stale_url_is_cached_briefly(client, query):
    response = client.get(f"/widget.js{query}")

    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["Access-Control-Allow-Origin"] == "*"


def test_the_version_follows_the_content(tmp_path):
    script = tmp_path / "widget.js"

    def version() -> str:
        stat = script.stat()
        return views._content_version(str(script), stat.st_mtime_ns, stat.st_size)

    script.write_text("console.log(1)")
    first = version()
    script.write_text("console.log(22)")

    assert version() != first


def test_the_embed_snippet_shown_to_customers_is_the_stable_url(client, db):
    html = client.get("/").content.decode()

    assert "&lt;script src=&quot;http://testserver/widget.js&quot;" in html or (
        '&lt;script src="http://testserver/widget.js"' in html
    )
