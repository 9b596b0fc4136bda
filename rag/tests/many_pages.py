"""A local site of any number of pages made from the demo site, for ingest counts and `bench/run.py ingest`.

Page k is the main text of demo page k mod 16 (rendered by Django, links removed so the crawl stays
on these pages), under its own title and with a paragraph of its own, so every page is indexed (no
two share a content hash). "/" is page 0 and the sitemap lists them all.
"""

from __future__ import annotations

import re

from django.test import Client

from rag.demo_site import PAGES
from rag.tests.site import Response, page, sitemap

MAIN = re.compile(r"<main\b.*?</main>", re.DOTALL)
LINK = re.compile(r"</?a\b[^>]*>")


def routes(count: int, *, host: str = "testserver") -> dict[str, Response]:
    """`count` pages for `serve_site`: "/" and "/p/1" ... "/p/<count - 1>", with a sitemap of them all."""
    client = Client()
    demo = []
    for path, demo_page in PAGES.items():
        response = client.get(f"/demo-site/{path}", HTTP_HOST=host)
        assert response.status_code == 200, path
        found = MAIN.search(response.content.decode())
        assert found is not None, path
        demo.append((demo_page.lang, LINK.sub("", found.group(0))))
    paths = ["/", *(f"/p/{k}" for k in range(1, count))]
    site: dict[str, Response] = {"/sitemap.xml": sitemap(*(f"{{site}}{path}" for path in paths))}
    for k, path in enumerate(paths):
        lang, main = demo[k % len(demo)]
        extra = (
            f"<p>{'Referencia' if lang == 'es' else 'Reference'} {k}: {'página' if lang == 'es' else 'page'} {k}.</p>"
        )
        site[path] = page(f"Clínica Sonrisas {k}", main.replace("</main>", f"{extra}</main>"), lang)
    return site
