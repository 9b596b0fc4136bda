"""No SSRF: the crawler reaches no loopback, private, link-local... address unless the host is allow-listed.

The "public" site of these tests is itself on 127.0.0.1 (allow-listed by host and port); the "internal"
service is another port of 127.0.0.1 that is not. Each test checks the internal service was never
requested at all, not only that nothing was indexed.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from conversations import inbox
from conversations.assistant import turns
from rag import ingest
from rag.crawl import CrawlConfig, PageResult, crawl
from rag.models import Document, IngestStatus
from rag.netguard import forbidden_reason, parse_allow_hosts
from rag.tests.site import FakeSite, page, redirect, robots, serve_site, sitemap

SECRET = "La clave del panel interno es zafiro-42."
INTERNAL_ROUTES = {
    "/": page("Panel interno", f"<main><h1>Panel interno</h1><p>{SECRET}</p></main>", "es"),
    "/robots.txt": robots("User-agent: *\nAllow: /\n"),
    "/sitemap.xml": sitemap("{site}/"),
}


def crawl_as(site: FakeSite, start: str, **options: Any) -> tuple[dict[str, PageResult], Any]:
    """Crawl from `start` (a full URL) with `site` allow-listed, unless `allow_hosts` says otherwise."""
    options.setdefault("allow_hosts", (site.host,))
    results: dict[str, PageResult] = {}

    def on_page(result: PageResult) -> None:
        results[result.url] = result

    stats = crawl(CrawlConfig(start_url=start, **options), on_page)
    return results, stats


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata services
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address under test, not a binding)
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "private"),  # documentation
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),  # NAT64 to 10.0.0.1
        ("2002:7f00:1::1", "loopback"),  # 6to4 over 127.0.0.1
        ("::7f00:1", "reserved"),  # IPv4-compatible, deprecated
    ],
)
def test_non_public_addresses_are_forbidden(address: str, kind: str):
    assert kind in forbidden_reason(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_public_addresses_are_not(address: str):
    assert forbidden_reason(ipaddress.ip_address(address)) == ""


def test_allow_list_entries_are_host_and_optional_port():
    assert parse_allow_hosts(["127.0.0.1:8000", "Intranet.Example", "[::1]:8443", "::1"]) == {
        ("127.0.0.1", 8000),
        ("intranet.example", None),
        ("::1", 8443),
        ("::1", None),
    }
    for bad in ("http://example.com/", "example.com/docs", "user@example.com", "example.com:http", ":80"):
        with pytest.raises(ValueError, match="host"):
            parse_allow_hosts([bad])


def test_a_loopback_site_is_refused_without_the_allow_list():
    with serve_site(INTERNAL_ROUTES) as internal:
        results, stats = crawl_as(internal, internal.url("/"), allow_hosts=())

    start = results[internal.url("/")]
    assert (start.outcome, start.forbidden) == ("failed", True)
    assert start.reason.startswith("refused: 127.0.0.1 is a loopback address")
    assert "TALIA_CRAWL_ALLOW_HOSTS" in start.reason
    assert internal.total_requests() == 0  # not even robots.txt
    assert stats.fetched == 0 and stats.refused


def test_an_allow_list_entry_with_a_port_allows_only_that_port():
    with serve_site(INTERNAL_ROUTES) as internal:
        results, _ = crawl_as(internal, internal.url("/"), allow_hosts=("127.0.0.1:1",))

    assert results[internal.url("/")].forbidden
    assert internal.total_requests() == 0


def test_a_name_that_resolves_to_loopback_is_refused():
    with serve_site(INTERNAL_ROUTES) as internal:
        port = internal.host.rsplit(":", 1)[1]
        # Allowing the address does not allow a name pointing at it: entries match the URL's host as written.
        results, _ = crawl_as(internal, f"http://localhost:{port}/", allow_hosts=(internal.host,))

    (result,) = results.values()
    assert result.forbidden
    assert result.reason.startswith("refused: localhost resolves to ")
    assert internal.total_requests() == 0


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "[::ffff:7f00:1]"])
def test_loopback_written_as_ipv4_mapped_ipv6_is_refused(host: str):
    with serve_site(INTERNAL_ROUTES) as internal:
        port = internal.host.rsplit(":", 1)[1]
        # Without the guard a dual-stack socket would reach the IPv4 site through this address.
        results, _ = crawl_as(internal, f"http://{host}:{port}/", allow_hosts=(internal.host,))

    (result,) = results.values()
    assert result.forbidden
    assert "127.0.0.1 is a loopback address (written ::ffff:7f00:1)" in result.reason
    assert internal.total_requests() == 0


def test_a_redirect_hop_to_an_internal_address_is_refused():
    with serve_site(INTERNAL_ROUTES) as internal:
        routes = {
            "/": page("Home", '<a href="/go">Partner</a> <a href="/fine">Fine</a>'),
            "/go": redirect(internal.url("/"), status=302),  # same host name, a port that is not allowed
            "/fine": page("Fine", "<p>Fine.</p>"),
        }
        with serve_site(routes) as site:
            results, stats = crawl_as(site, site.url("/"))

    hop = results[site.url("/go")]
    assert (hop.outcome, hop.forbidden, hop.final_url) == ("failed", True, internal.url("/"))
    assert "127.0.0.1 is a loopback address" in hop.reason
    assert results[site.url("/fine")].outcome == "fetched"
    assert internal.total_requests() == 0
    assert any(entry.startswith(internal.url("/")) for entry in stats.refused)


def test_a_sitemap_redirected_or_listed_at_an_internal_address_is_not_read():
    with serve_site(INTERNAL_ROUTES) as internal:
        routes = {
            "/robots.txt": robots(f"User-agent: *\nAllow: /\nSitemap: {internal.url('/sitemap.xml')}\n"),
            "/sitemap.xml": redirect(internal.url("/sitemap.xml")),
            "/": page("Home", "<p>Hello.</p>"),
        }
        with serve_site(routes) as site:
            results, stats = crawl_as(site, site.url("/"))

    assert internal.total_requests() == 0
    assert results[site.url("/")].outcome == "fetched"
    listed, redirected = stats.refused
    assert listed.startswith(f"{internal.url('/sitemap.xml')}: refused: 127.0.0.1 is a loopback address")
    assert redirected.startswith(f"{site.url('/sitemap.xml')}: redirected to {internal.url('/sitemap.xml')}, refused:")


def test_a_sitemap_redirected_to_another_host_is_not_read():
    with serve_site(INTERNAL_ROUTES) as internal:
        port = internal.host.rsplit(":", 1)[1]
        routes = {"/sitemap.xml": redirect(f"http://localhost:{port}/sitemap.xml"), "/": page("Home", "<p>Hi.</p>")}
        with serve_site(routes) as site:
            # Even with the other host allowed: robots.txt and sitemaps stay on the site, like pages.
            _, stats = crawl_as(site, site.url("/"), allow_hosts=(site.host, f"localhost:{port}"))

    assert internal.total_requests() == 0
    assert stats.refused == [f"{site.url('/sitemap.xml')}: redirected off-site: http://localhost:{port}/sitemap.xml"]


def test_a_robots_txt_redirected_to_an_internal_address_stops_the_crawl():
    with serve_site(INTERNAL_ROUTES) as internal:
        routes = {"/robots.txt": redirect(internal.url("/robots.txt")), "/": page("Home", "<p>Hi.</p>")}
        with serve_site(routes) as site:
            results, stats = crawl_as(site, site.url("/"))

    assert internal.total_requests() == 0
    start = results[site.url("/")]
    assert (start.outcome, start.forbidden) == ("failed", True)
    assert "127.0.0.1 is a loopback address" in start.reason
    assert site.requests["/"] == 0 and stats.fetched == 0


# --- Through the ingest pipeline and the chat --------------------------------------------------------


def ask(question: str, session: str) -> str:
    """An anonymous web visitor's question, answered by the offline assistant from the knowledge base."""
    received = inbox.receive("web", session, question, locale="es")
    run = turns.run_turn(received.message.pk)
    assert run is not None and run.reply_message is not None
    return run.reply_message.text


def test_an_internal_page_is_neither_indexed_nor_told_to_visitors(db, settings):
    question = "¿Cuál es la clave del panel interno?"
    with serve_site(INTERNAL_ROUTES) as internal:
        # An operator who allow-lists the host gets it indexed, and the assistant answers from it...
        settings.TALIA_CRAWL_ALLOW_HOSTS = [internal.host]
        allowed = ingest.run_ingest(str(ingest.start_ingest(internal.url("/"), enqueue=False).pk))
        assert allowed.status == IngestStatus.COMPLETED and allowed.indexed == 1
        assert "zafiro-42" in ask(question, "ssrf-visitor-0001")

        # ...without the allow-list the job is refused, says why, and what was indexed is dropped.
        settings.TALIA_CRAWL_ALLOW_HOSTS = []
        requests_before = internal.total_requests()
        refused = ingest.run_ingest(str(ingest.start_ingest(internal.url("/"), enqueue=False).pk))

    assert internal.total_requests() == requests_before
    assert refused.status == IngestStatus.FAILED
    assert "127.0.0.1 is a loopback address" in refused.error and "TALIA_CRAWL_ALLOW_HOSTS" in refused.error
    assert refused.log[-1]["outcome"] == "failed" and refused.log[-1]["reason"].startswith("refused:")
    assert refused.failed == 1 and refused.removed == 1
    assert not Document.objects.exists()
    assert "zafiro-42" not in ask(question, "ssrf-visitor-0002")


def test_the_allow_list_is_checked_at_start_up(settings):
    from django.core.checks import run_checks

    settings.TALIA_CRAWL_ALLOW_HOSTS = ["http://127.0.0.1:8000/"]

    assert "rag.E002" in [message.id for message in run_checks()]
