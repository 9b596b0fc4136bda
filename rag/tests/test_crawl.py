import asyncio
import socket
import threading
from typing import Any

import pytest

from rag.crawl import CrawlConfig, CrawlStats, PageResult, crawl, normalize_url
from rag.tests.site import (
    FakeSite,
    Response,
    page,
    redirect,
    robots,
    serve_site,
    sitemap,
    sitemap_index,
)

# robots.txt and sitemaps are read before any page; they do not count as pages.
SITE_FILES = frozenset({"/robots.txt", "/sitemap.xml"})


def crawl_site(site: FakeSite, start: str = "/", **options: Any) -> tuple[dict[str, PageResult], CrawlStats]:
    """Crawl `site` from `start`, its loopback address allowed; results keyed by path, each URL reported once."""
    results: dict[str, PageResult] = {}

    def on_page(result: PageResult) -> None:
        path = result.url.removeprefix(site.base_url)
        assert path not in results, f"{path} reported twice"
        results[path] = result

    options.setdefault("allow_hosts", (site.host,))
    stats = crawl(CrawlConfig(start_url=site.url(start), **options), on_page)
    return results, stats


def page_requests(site: FakeSite) -> int:
    return sum(count for target, count in site.requests.items() if target not in SITE_FILES)


def test_pages_come_from_the_sitemap_and_from_links():
    routes = {
        "/sitemap.xml": sitemap("{site}/pricing", "{site}/contact"),
        "/": page("Home", '<a href="/about">About us</a>'),
        "/about": page("About", '<a href="team#people">Team</a>'),
        "/team": page("Team", "<p>Only reachable through links.</p>"),
        "/pricing": page("Pricing", "<p>Cheap.</p>"),
        "/contact": page("Contact", "<p>Write to us.</p>"),
    }
    with serve_site(routes) as site:
        results, stats = crawl_site(site)

    assert {path: result.outcome for path, result in results.items()} == dict.fromkeys(
        ["/pricing", "/contact", "/", "/about", "/team"], "fetched"
    )
    assert results["/team"].page is not None
    assert results["/team"].page.title == "Team"
    assert results["/team"].status == 200
    assert (stats.fetched, stats.skipped, stats.failed) == (5, 0, 0)
    assert stats.discovered[:3] == [site.url("/pricing"), site.url("/contact"), site.url("/")]
    assert all(count == 1 for count in site.requests.values())


def test_robots_txt_disallowed_pages_are_never_requested():
    routes = {
        "/robots.txt": robots("User-agent: *\nDisallow: /private/\n"),
        "/sitemap.xml": sitemap("{site}/private/listed"),
        "/": page("Home", '<a href="/private/linked">Secret</a> <a href="/public">Public</a>'),
        "/private/listed": page("Secret", "<p>Secret.</p>"),
        "/private/linked": page("Secret", "<p>Secret.</p>"),
        "/public": page("Public", "<p>Public.</p>"),
    }
    with serve_site(routes) as site:
        results, stats = crawl_site(site)

    for path in ("/private/listed", "/private/linked"):
        assert results[path].outcome == "skipped"
        assert results[path].reason == "robots.txt disallows"
        assert results[path].status is None
        assert site.requests[path] == 0
    assert (stats.fetched, stats.skipped) == (2, 2)


def test_robots_txt_group_naming_our_user_agent_is_the_one_obeyed():
    routes = {
        "/robots.txt": robots("User-agent: *\nDisallow: /\n\nUser-agent: TalIABot\nDisallow: /no-bots\n"),
        "/": page("Home", '<a href="/no-bots">Humans only</a> <a href="/welcome">Welcome</a>'),
        "/no-bots": page("Humans", "<p>Humans only.</p>"),
        "/welcome": page("Welcome", "<p>Bots welcome.</p>"),
    }
    with serve_site(routes) as site:
        results, _stats = crawl_site(site)

    assert results["/no-bots"].reason == "robots.txt disallows"
    assert site.requests["/no-bots"] == 0
    assert results["/welcome"].outcome == "fetched"


def test_sitemaps_named_in_robots_txt_are_read_through_one_index_level():
    routes = {
        "/robots.txt": robots("User-agent: *\nAllow: /\nSitemap: {site}/maps/index.xml\n"),
        "/maps/index.xml": sitemap_index("{site}/maps/pages.xml"),
        "/maps/pages.xml": sitemap("{site}/deep/page"),
        "/": page("Home", "<p>No links here.</p>"),
        "/deep/page": page("Deep", "<p>Listed in a nested sitemap.</p>"),
    }
    with serve_site(routes) as site:
        results, _stats = crawl_site(site)

    assert results["/deep/page"].outcome == "fetched"
    assert site.requests["/sitemap.xml"] == 1  # the usual place is tried too, and its 404 is no error


def test_unreachable_robots_txt_means_nothing_is_crawled():
    routes = {
        "/robots.txt": Response(status=503, content_type="text/plain", body="down"),
        "/": page("Home", "<p>Hello.</p>"),
    }
    with serve_site(routes) as site:
        results, stats = crawl_site(site)

    assert results["/"].outcome == "skipped"
    assert results["/"].reason == "robots.txt unreachable"
    assert page_requests(site) == 0
    assert stats.skipped == 1


def test_redirect_within_the_site_is_followed():
    routes = {
        "/": page("Home", '<a href="/old">Old page</a>'),
        "/old": redirect("/new"),
        "/new": page("New", "<p>Moved here.</p>"),
    }
    with serve_site(routes) as site:
        results, stats = crawl_site(site)

    moved = results["/old"]
    assert moved.outcome == "fetched"
    assert moved.final_url == site.url("/new")
    assert moved.page is not None
    assert moved.page.title == "New"
    assert "/new" not in results  # reported once, under the URL that led to it
    assert site.requests["/new"] == 1
    assert site.url("/new") in stats.discovered


def test_redirect_to_a_page_crawled_on_its_own_is_skipped():
    routes = {
        "/sitemap.xml": sitemap("{site}/new"),
        "/": page("Home", '<a href="/old">Old page</a>'),
        "/old": redirect("/new"),
        "/new": page("New", "<p>Moved here.</p>"),
    }
    with serve_site(routes) as site:
        results, _stats = crawl_site(site)

    assert results["/new"].outcome == "fetched"
    assert results["/old"].outcome == "skipped"
    assert site.requests["/new"] == 1


def test_redirect_off_site_is_skipped_without_following_it():
    routes = {
        "/": page("Home", '<a href="/away">Partner</a>'),
        "/away": redirect("http://elsewhere.invalid/landing", status=302),
    }
    with serve_site(routes) as site:
        results, stats = crawl_site(site)

    away = results["/away"]
    assert away.outcome == "skipped"
    assert away.reason == "redirected off-site: http://elsewhere.invalid/landing"
    assert away.status == 302
    assert away.page is None
    assert stats.skipped == 1


def test_redirect_chain_longer_than_five_fails():
    routes = {f"/hop{n}": redirect(f"/hop{n + 1}") for n in range(7)} | {"/": page("Home", '<a href="/hop0">Go</a>')}
    with serve_site(routes) as site:
        results, _stats = crawl_site(site)

    assert results["/hop0"].outcome == "failed"
    assert results["/hop0"].reason == "too many redirects"
    assert site.requests["/hop6"] == 0


def test_server_error_is_a_failed_page_and_the_crawl_goes_on():
    routes = {
        "/": page("Home", '<a href="/broken">Broken</a> <a href="/fine">Fine</a>'),
        "/broken": Response(status=500, body="<h1>Oops</h1>"),
        "/fine": page("Fine", "<p>Fine.</p>"),
    }
    with serve_site(routes) as site:
        results, stats = crawl_site(site)

    assert results["/broken"].outcome == "failed"
    assert results["/broken"].reason == "HTTP 500"
    assert results["/broken"].status == 500
    assert results["/fine"].outcome == "fetched"
    assert (stats.fetched, stats.failed) == (2, 1)


def test_pdf_is_skipped_as_not_html():
    routes = {
        "/": page("Home", '<a href="/brochure.pdf">Brochure</a>'),
        "/brochure.pdf": Response(content_type="application/pdf", body=b"%PDF-1.7 " + b"x" * 100_000),
    }
    with serve_site(routes) as site:
        results, _stats = crawl_site(site)

    assert results["/brochure.pdf"].outcome == "skipped"
    assert results["/brochure.pdf"].reason == "not HTML (application/pdf)"
    assert results["/brochure.pdf"].status == 200


def test_page_larger_than_max_bytes_is_skipped():
    routes = {
        "/": page("Home", '<a href="/huge">Huge</a>'),
        "/huge": page("Huge", "<p>" + "word " * 2_000 + "</p>"),
    }
    with serve_site(routes) as site:
        results, _stats = crawl_site(site, max_bytes=5_000)

    assert results["/"].outcome == "fetched"
    assert results["/huge"].outcome == "skipped"
    assert results["/huge"].reason == "too large"


def test_two_urls_with_the_same_content_are_both_fetched_with_one_hash():
    article = "<h1>Opening hours</h1><p>Monday to Friday, 9 to 18.</p>"
    routes = {
        "/": page("Home", '<a href="/hours">Hours</a> <a href="/hours?print=1">Print</a>'),
        "/hours": page("Hours", f"<main>{article}</main>"),
        "/hours?print=1": page("Hours (print)", f"<main>\n  {article.replace('<p>', '<p class=print>')}\n</main>"),
    }
    with serve_site(routes) as site:
        results, _stats = crawl_site(site)

    screen, printable = results["/hours"].page, results["/hours?print=1"].page
    assert screen is not None
    assert printable is not None
    assert screen.content_hash == printable.content_hash
    assert results["/"].page is not None
    assert results["/"].page.content_hash != screen.content_hash


def test_no_more_than_max_pages_are_fetched():
    routes = {f"/page{n}": page(f"Page {n}", f'<a href="/page{n + 1}">Next</a>') for n in range(10)}
    routes["/"] = page("Home", '<a href="/page0">Start</a>')
    with serve_site(routes) as site:
        results, stats = crawl_site(site, max_pages=3)

    assert page_requests(site) == 3
    assert stats.fetched == 3
    assert len(results) == 3
    assert len(stats.discovered) > 3  # the next link was seen, just not fetched


def test_path_prefixes_limit_what_is_fetched():
    routes = {
        "/sitemap.xml": sitemap("{site}/docs/listed", "{site}/blog/listed"),
        "/docs/": page("Docs", '<a href="/docs/install">Install</a> <a href="/blog/news">News</a>'),
        "/docs/install": page("Install", "<p>pip install.</p>"),
        "/docs/listed": page("Listed", "<p>Listed.</p>"),
        "/blog/news": page("News", "<p>News.</p>"),
        "/blog/listed": page("Listed", "<p>Listed.</p>"),
    }
    with serve_site(routes) as site:
        results, _stats = crawl_site(site, start="/docs/", path_prefixes=("/docs/",))

    fetched = {path for path, result in results.items() if result.outcome == "fetched"}
    assert fetched == {"/docs/", "/docs/install", "/docs/listed"}
    for path in ("/blog/news", "/blog/listed"):
        assert results[path].outcome == "skipped"
        assert results[path].reason == "outside path prefixes"
        assert site.requests[path] == 0


def test_slow_page_fails_with_a_timeout():
    routes = {
        "/": page("Home", '<a href="/slow">Slow</a>'),
        "/slow": Response(body="<p>Finally.</p>", delay_s=1.0),
    }
    with serve_site(routes) as site:
        results, stats = crawl_site(site, timeout_s=0.3)

    assert results["/"].outcome == "fetched"
    assert results["/slow"].outcome == "failed"
    assert results["/slow"].reason == "timeout"
    assert results["/slow"].status is None
    assert stats.failed == 1


def closed_port() -> int:
    """A local port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_refused_connection_is_a_failed_page():
    # Same host, so same site: only the port differs.
    gone = f"http://127.0.0.1:{closed_port()}/gone"
    with serve_site({"/": page("Home", f'<a href="{gone}">Gone</a>')}) as site:
        results: list[PageResult] = []
        stats = crawl(CrawlConfig(start_url=site.url("/"), allow_hosts=("127.0.0.1",)), results.append)

    refused = next(result for result in results if result.url == gone)
    assert refused.outcome == "failed"
    assert refused.reason.startswith("ConnectError")
    assert (stats.fetched, stats.failed) == (1, 1)


def test_unreachable_site_reports_its_start_page_as_skipped():
    results: list[PageResult] = []

    config = CrawlConfig(start_url=f"http://127.0.0.1:{closed_port()}/", timeout_s=1.0, allow_hosts=("127.0.0.1",))
    stats = crawl(config, results.append)

    # Without a robots.txt answer, RFC 9309 says to assume everything is disallowed.
    assert [(result.outcome, result.reason) for result in results] == [("skipped", "robots.txt unreachable")]
    assert stats.fetched == 0


def test_html_is_decoded_with_its_meta_charset():
    body = '<html><head><meta charset="iso-8859-1"><title>Año</title></head><body><p>Señal</p></body></html>'
    routes = {"/": Response(content_type="text/html", body=body.encode("iso-8859-1"))}
    with serve_site(routes) as site:
        results, _stats = crawl_site(site)

    assert results["/"].page is not None
    assert results["/"].page.title == "Año"


def test_requests_carry_the_configured_user_agent():
    with serve_site({"/": page("Home", "<p>Hi.</p>")}) as site:
        crawl_site(site, user_agent="TestBot/2.0")

    assert site.user_agents == {"TestBot/2.0"}


def test_on_page_runs_in_the_calling_thread_outside_any_event_loop():
    """So that on_page may use the Django ORM, which refuses to run inside an event loop."""
    calls: list[tuple[int, bool]] = []

    def on_page(result: PageResult) -> None:
        try:
            asyncio.get_running_loop()
            in_loop = True
        except RuntimeError:
            in_loop = False
        calls.append((threading.get_ident(), in_loop))

    with serve_site({"/": page("Home", '<a href="/next">Next</a>'), "/next": page("Next", "")}) as site:
        crawl(CrawlConfig(start_url=site.url("/"), allow_hosts=(site.host,)), on_page)

    assert calls == [(threading.get_ident(), False)] * 2


def test_an_error_in_on_page_stops_the_crawl_and_propagates():
    routes = {"/sitemap.xml": sitemap(*(f"{{site}}/page{n}" for n in range(10)))}
    routes |= {f"/page{n}": Response(body=f"<p>Page {n}</p>", delay_s=0.05) for n in range(10)}

    def on_page(result: PageResult) -> None:
        raise RuntimeError("storage is down")

    with serve_site(routes) as site, pytest.raises(RuntimeError, match="storage is down"):
        crawl(CrawlConfig(start_url=site.url("/"), concurrency=1, allow_hosts=(site.host,)), on_page)

    assert page_requests(site) < 10


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM:80/a?b=1#top", "http://example.com/a?b=1"),
        ("https://example.com:443", "https://example.com/"),
        ("https://user:secret@example.com:8443/x", "https://example.com:8443/x"),
        ("http://[::1]:8000/", "http://[::1]:8000/"),
        ("mailto:someone@example.com", None),
        ("ftp://example.com/file", None),
        ("http://example.com:99999/", None),
        ("/relative/path", None),
    ],
)
def test_normalize_url(url: str, expected: str | None):
    assert normalize_url(url) == expected


def test_config_defaults_the_allowed_domain_to_the_start_host():
    assert CrawlConfig(start_url="https://WWW.Example.com/es/").allowed_domain == "www.example.com"
    with pytest.raises(ValueError, match="not an http"):
        CrawlConfig(start_url="example.com")


@pytest.mark.parametrize(
    "option", ["max_pages", "concurrency", "timeout_s", "max_bytes", "fetch_deadline_s", "time_limit_s"]
)
def test_config_refuses_a_limit_that_is_not_positive(option: str):
    limits: dict[str, Any] = {option: 0}
    with pytest.raises(ValueError, match="must be positive"):
        CrawlConfig(start_url="https://example.com/", **limits)
