"""A polite, bounded crawler for one site: robots.txt, then its sitemaps, then links, breadth first.

`crawl()` is synchronous so that a Celery task or a management command can call it. The network work
runs on an event loop in a helper thread, while `on_page` runs in the calling thread, where no event
loop is running, so it may use the Django ORM.

Invariants: every request (pages, robots.txt, sitemaps, each redirect hop) connects only to public
addresses or allow-listed hosts (`rag.netguard`); redirects are followed by hand and never leave the
site's host; each fetch, redirects and body included, ends within `fetch_deadline_s` (a server that
drips one byte a second is abandoned), and the whole crawl within `time_limit_s`.
"""

import asyncio
import logging
import queue
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx2
from selectolax.lexbor import LexborHTMLParser

from rag.extract import ExtractedPage, extract
from rag.netguard import AllowList, ForbiddenAddress, GuardedTransport, parse_allow_hosts
from talia.text import collapse_whitespace

logger = logging.getLogger("talia.rag")

MAX_REDIRECTS = 5
# Sitemap files read per crawl, indexes included: big sites split theirs into hundreds.
MAX_SITEMAPS = 20
HTML_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})
DEFAULT_PORTS = {"http": 80, "https": 443}
META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset=["']?([\w-]+)""", re.IGNORECASE)

OFF_SITE = "off-site"
OUTSIDE_PREFIXES = "outside path prefixes"
ROBOTS_DISALLOW = "robots.txt disallows"
ROBOTS_UNREACHABLE = "robots.txt unreachable"

Outcome = Literal["fetched", "skipped", "failed"]


@dataclass
class CrawlConfig:
    """What to crawl and how gently.

    Only URLs whose host equals `allowed_domain` exactly (case aside; "www.example.com" is not
    "example.com") are crawled. robots.txt is read from the start URL's origin. `path_prefixes`,
    when given, restricts the crawl to URL paths starting with one of them. `timeout_s` applies to
    each network operation (connect, each read); `fetch_deadline_s` to a whole fetch, redirects and
    body included; `time_limit_s`, when given, to the whole crawl. `allow_hosts` lists the
    `host[:port]` entries that may be on non-public addresses (see `rag.netguard`).
    """

    start_url: str
    allowed_domain: str = ""
    path_prefixes: tuple[str, ...] = ()
    max_pages: int = 50
    concurrency: int = 4
    timeout_s: float = 10.0
    user_agent: str = "TalIABot/1.0 (+https://github.com/talia)"
    max_bytes: int = 2_000_000
    fetch_deadline_s: float = 30.0
    time_limit_s: float | None = None
    allow_hosts: tuple[str, ...] = ()
    allow: AllowList = field(init=False, repr=False)

    def __post_init__(self) -> None:
        start_url = normalize_url(self.start_url)
        if start_url is None:
            raise ValueError(f"not an http(s) URL: {self.start_url!r}")
        self.start_url = start_url
        if self.max_pages < 1 or self.concurrency < 1 or self.timeout_s <= 0 or self.max_bytes < 1:
            raise ValueError("max_pages, concurrency, timeout_s and max_bytes must be positive")
        if self.fetch_deadline_s <= 0 or (self.time_limit_s is not None and self.time_limit_s <= 0):
            raise ValueError("fetch_deadline_s and time_limit_s must be positive")
        self.allow = parse_allow_hosts(self.allow_hosts)
        self.allowed_domain = (self.allowed_domain or urlsplit(start_url).hostname or "").lower()


@dataclass
class PageResult:
    """What became of one URL: fetched (with its page), skipped by policy, or failed, with why."""

    url: str
    final_url: str
    status: int | None
    outcome: Outcome
    reason: str
    page: ExtractedPage | None
    forbidden: bool = False  # failed because the host is on a non-public address (the reason says which)


@dataclass
class CrawlStats:
    """Counts of outcomes, and every in-domain URL the crawl learnt of, in discovery order.

    URLs discovered after `max_pages` was reached are listed but neither fetched nor reported.
    `refused` says, per URL, which requests the crawl refused to make (a non-public address, a
    robots.txt or sitemap redirected off-site), pages and site files alike.
    """

    fetched: int = 0
    skipped: int = 0
    failed: int = 0
    discovered: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class CrawlTimeLimit(Exception):
    """The crawl ran out of its `time_limit_s`; the pages reported until then stand."""


def normalize_url(url: str) -> str | None:
    """The canonical form of an http(s) URL, or None for anything else.

    Drops the fragment, credentials and the scheme's default port, lowercases scheme and host, and
    keeps the query string.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a malformed port or IPv6 address
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname  # already lowercased
    if scheme not in DEFAULT_PORTS or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def crawl(config: CrawlConfig, on_page: Callable[[PageResult], None]) -> CrawlStats:
    """Crawl the site described by `config`, calling `on_page` once per URL as results complete.

    Network and HTTP errors are reported as failed pages, never raised. If `on_page` raises, the
    crawl stops (requests under way finish first, each within its deadline) and the exception
    propagates. Past `time_limit_s` the crawl stops and raises CrawlTimeLimit.
    """
    results: queue.SimpleQueue[PageResult | None] = queue.SimpleQueue()
    stopping = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="talia-crawl") as executor:
        crawling = executor.submit(asyncio.run, _crawl(config, results.put, stopping))
        try:
            while (result := results.get()) is not None:
                on_page(result)
        except BaseException:
            stopping.set()
            raise
    return crawling.result()


async def _crawl(
    config: CrawlConfig, report: Callable[[PageResult | None], None], stopping: threading.Event
) -> CrawlStats:
    """Run the crawl on this thread's event loop; `report` gets every result, then None."""
    try:
        async with httpx2.AsyncClient(
            headers={"User-Agent": config.user_agent},
            timeout=config.timeout_s,
            transport=GuardedTransport(config.allow, max_connections=config.concurrency),
            trust_env=False,
        ) as client:
            crawler = _Crawler(config, client, report, stopping)
            try:
                async with asyncio.timeout(config.time_limit_s) as limit:
                    await crawler.run()
            except TimeoutError:
                if not limit.expired():
                    raise
                stats = crawler.stats
                raise CrawlTimeLimit(
                    f"stopped at the time limit of {config.time_limit_s:g}s "
                    f"({stats.fetched} fetched, {stats.skipped} skipped, {stats.failed} failed until then)"
                ) from None
            return crawler.stats
    finally:
        report(None)


class _Refused(Exception):
    """A redirect the crawl must not follow, or a fetch past its deadline."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Crawler:
    def __init__(
        self,
        config: CrawlConfig,
        client: httpx2.AsyncClient,
        report: Callable[[PageResult], None],
        stopping: threading.Event,
    ) -> None:
        self.config = config
        self.client = client
        self.report = report
        self.stopping = stopping
        self.stats = CrawlStats()
        self.seen: set[str] = set()
        self.pages_left = config.max_pages
        self.robots = RobotFileParser()
        self.robots_refusal = ROBOTS_DISALLOW
        self.robots_outcome: Outcome = "skipped"  # "failed" when the site's own address is refused
        self.semaphore = asyncio.Semaphore(config.concurrency)
        self.tasks = asyncio.TaskGroup()

    async def run(self) -> None:
        start = urlsplit(self.config.start_url)
        origin = f"{start.scheme}://{start.netloc}"
        logger.info("Crawling %s (at most %d pages)", self.config.start_url, self.config.max_pages)
        await self._read_robots(urljoin(origin, "/robots.txt"))
        seeds = []
        if self.robots_outcome != "failed":  # the site's own address is refused: so would its sitemaps be
            seeds = await self._read_sitemaps([*(self.robots.site_maps() or []), urljoin(origin, "/sitemap.xml")])
        async with self.tasks:
            for url in [*seeds, self.config.start_url]:
                self._schedule(url)
        logger.info(
            "Crawled %s: %d fetched, %d skipped, %d failed",
            self.config.start_url,
            self.stats.fetched,
            self.stats.skipped,
            self.stats.failed,
        )

    async def _read_robots(self, url: str) -> None:
        """Load robots.txt as RFC 9309 says: a 4xx allows everything, a 5xx or no answer nothing."""
        try:
            status, body = await self._get_small(url)
        except ForbiddenAddress as exc:
            logger.warning("Not reading %s, crawling nothing: %s", url, exc)
            self.stats.refused.append(f"{url}: {exc}")
            self.robots.parse(["User-agent: *", "Disallow: /"])
            self.robots_refusal, self.robots_outcome = str(exc), "failed"
            return
        except _Refused as refused:
            logger.warning("Not reading %s, crawling nothing: %s", url, refused.reason)
            self.stats.refused.append(f"{url}: {refused.reason}")
            self.robots.parse(["User-agent: *", "Disallow: /"])
            self.robots_refusal = f"robots.txt {refused.reason}"
            return
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            logger.warning("Could not read %s, crawling nothing: %s", url, exc)
            status, body = None, b""
        if status is not None and 200 <= status < 300:
            self.robots.parse(body.decode("utf-8", errors="replace").splitlines())
        elif status is not None and 400 <= status < 500:
            self.robots.parse([])
        else:
            if status is not None:
                logger.warning("%s answered HTTP %d, crawling nothing", url, status)
            self.robots.parse(["User-agent: *", "Disallow: /"])
            self.robots_refusal = ROBOTS_UNREACHABLE

    async def _read_sitemaps(self, sitemap_urls: list[str]) -> list[str]:
        """Page URLs listed by the site's sitemaps, following sitemap indexes one level down."""
        pending = list(dict.fromkeys(url for url in sitemap_urls if self._is_in_domain(url)))
        page_urls: list[str] = []
        for reads, sitemap_url in enumerate(pending):
            if reads == MAX_SITEMAPS:
                break
            locations, is_index = await self._read_sitemap(sitemap_url)
            if not is_index:
                page_urls.extend(locations)
            elif sitemap_url in sitemap_urls:  # an index named by robots.txt or the usual place, not a nested one
                pending.extend(url for url in locations if self._is_in_domain(url) and url not in pending)
        return page_urls

    async def _read_sitemap(self, url: str) -> tuple[list[str], bool]:
        """The <loc> URLs of a sitemap, and whether it is a sitemap index."""
        try:
            status, body = await self._get_small(url)
        except ForbiddenAddress as exc:
            logger.warning("Not reading sitemap %s: %s", url, exc)
            self.stats.refused.append(f"{url}: {exc}")
            return [], False
        except _Refused as refused:
            logger.warning("Not reading sitemap %s: %s", url, refused.reason)
            self.stats.refused.append(f"{url}: {refused.reason}")
            return [], False
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            logger.info("Could not read sitemap %s: %s", url, exc)
            return [], False
        if not 200 <= status < 300:
            logger.debug("No sitemap at %s (HTTP %d)", url, status)
            return [], False
        # The lenient HTML parser reads sitemaps well enough, and never expands XML entities.
        tree = LexborHTMLParser(body.decode("utf-8", errors="replace"))
        is_index = tree.css_first("sitemapindex") is not None
        locations = [
            collapse_whitespace(node.text()) for node in tree.css("sitemap > loc" if is_index else "url > loc")
        ]
        return locations, is_index

    async def _get_small(self, url: str) -> tuple[int, bytes]:
        """GET a robots.txt or sitemap within the fetch deadline; a body past max_bytes is cut short.

        Redirects are followed on the site's own host only: anywhere else raises _Refused, as for pages.
        """
        current = url
        try:
            async with asyncio.timeout(self.config.fetch_deadline_s):
                for _hop in range(MAX_REDIRECTS + 1):
                    try:
                        async with self.client.stream("GET", current) as response:
                            if not response.is_redirect:
                                body, _complete = await _read_up_to(response, self.config.max_bytes)
                                return response.status_code, body
                            location = response.headers["location"]
                    except ForbiddenAddress as exc:
                        if current == url:
                            raise
                        raise ForbiddenAddress(f"redirected to {current}, {exc}") from None
                    target = normalize_url(urljoin(current, location))
                    if target is None or not self._is_in_domain(target):
                        raise _Refused(response.status_code, f"redirected off-site: {target or location}")
                    current = target
        except TimeoutError:
            raise httpx2.TimeoutException(
                f"no complete answer within {self.config.fetch_deadline_s:g}s", request=None
            ) from None
        raise _Refused(response.status_code, "redirected too many times")

    def _is_in_domain(self, url: str) -> bool:
        return urlsplit(url).hostname == self.config.allowed_domain

    def _refusal(self, url: str) -> str:
        """Why the crawl must not fetch `url`, or "" when it may."""
        if not self._is_in_domain(url):
            return OFF_SITE
        if self.config.path_prefixes and not urlsplit(url).path.startswith(self.config.path_prefixes):
            return OUTSIDE_PREFIXES
        if not self.robots.can_fetch(self.config.user_agent, url):
            return self.robots_refusal
        return ""

    def _schedule(self, link: str) -> None:
        """Queue a link for fetching if it is new, allowed and within the page budget."""
        url = normalize_url(link)
        if url is None or url in self.seen or self.stopping.is_set():
            return
        refusal = self._refusal(url)
        if refusal == OFF_SITE:  # other sites' URLs are not this crawl's to list
            return
        self.seen.add(url)
        self.stats.discovered.append(url)
        if refusal:
            outcome = self.robots_outcome if refusal == self.robots_refusal else "skipped"
            self._report(
                PageResult(
                    url=url,
                    final_url=url,
                    status=None,
                    outcome=outcome,
                    reason=refusal,
                    page=None,
                    forbidden=outcome == "failed",
                )
            )
        elif self.pages_left > 0:
            self.pages_left -= 1
            self.tasks.create_task(self._visit(url))

    async def _visit(self, url: str) -> None:
        async with self.semaphore:
            if self.stopping.is_set():
                return
            result = await self._fetch(url)
        self._report(result)
        if result.page:
            for link in result.page.links:
                self._schedule(link)

    def _report(self, result: PageResult) -> None:
        logger.debug("%s %s %s", result.outcome, result.url, result.reason)
        match result.outcome:
            case "fetched":
                self.stats.fetched += 1
            case "skipped":
                self.stats.skipped += 1
            case "failed":
                self.stats.failed += 1
        self.report(result)

    async def _fetch(self, url: str) -> PageResult:
        """GET `url`, following allowed redirects by hand so that no forbidden URL is ever requested.

        The whole fetch, every hop and the body, has `fetch_deadline_s`: a server that answers slowly
        but steadily (each read within `timeout_s`) is abandoned all the same.
        """
        hops = [url]
        try:
            async with asyncio.timeout(self.config.fetch_deadline_s):
                return await self._follow(url, hops)
        except TimeoutError:
            reason = f"deadline: no complete answer within {self.config.fetch_deadline_s:g}s"
            return PageResult(url, hops[-1], None, "failed", reason, None)

    async def _follow(self, url: str, hops: list[str]) -> PageResult:
        current = url
        try:
            while True:
                response = await self.client.send(self.client.build_request("GET", current), stream=True)
                try:
                    if not response.is_redirect:
                        return await self._read_page(url, current, response)
                finally:
                    await response.aclose()
                if len(hops) > MAX_REDIRECTS:
                    return PageResult(url, current, response.status_code, "failed", "too many redirects", None)
                current = self._redirect_target(current, response)
                hops.append(current)
        except ForbiddenAddress as exc:
            self.stats.refused.append(f"{current}: {exc}")
            return PageResult(url, current, None, "failed", str(exc), None, forbidden=True)
        except _Refused as refused:
            return PageResult(url, current, refused.status, "skipped", refused.reason, None)
        except httpx2.TimeoutException:
            return PageResult(url, current, None, "failed", "timeout", None)
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            return PageResult(url, current, None, "failed", f"{type(exc).__name__}: {exc}", None)

    def _redirect_target(self, current: str, response: httpx2.Response) -> str:
        """Where a redirect leads, if the crawl may go there and has not been there yet."""
        status = response.status_code
        target = normalize_url(urljoin(current, response.headers["location"]))
        if target is None:
            raise _Refused(status, f"redirected to a non-HTTP URL: {response.headers['location']}")
        refusal = self._refusal(target)
        if refusal == OFF_SITE:
            raise _Refused(status, f"redirected off-site: {target}")
        if refusal:
            raise _Refused(status, f"redirected to {target}: {refusal}")
        if target in self.seen:
            raise _Refused(status, f"redirected to {target}: crawled on its own")
        self.seen.add(target)
        self.stats.discovered.append(target)
        return target

    async def _read_page(self, url: str, final_url: str, response: httpx2.Response) -> PageResult:
        status = response.status_code

        def result(outcome: Outcome, reason: str = "", page: ExtractedPage | None = None) -> PageResult:
            return PageResult(url=url, final_url=final_url, status=status, outcome=outcome, reason=reason, page=page)

        if not 200 <= status < 300:
            return result("failed", f"HTTP {status}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in HTML_MEDIA_TYPES:
            return result("skipped", f"not HTML ({media_type or 'no content type'})")
        declared_length = response.headers.get("content-length", "")
        if declared_length.isdigit() and int(declared_length) > self.config.max_bytes:
            return result("skipped", "too large")
        body, complete = await _read_up_to(response, self.config.max_bytes)
        if not complete:
            return result("skipped", "too large")
        return result("fetched", page=extract(_decode_html(body, response.charset_encoding), final_url))


async def _read_up_to(response: httpx2.Response, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of a streamed body, and whether that is all of it."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), False
    return bytes(body), True


def _decode_html(body: bytes, header_charset: str | None) -> str:
    """Decode with the Content-Type charset, else a <meta> charset near the top, else UTF-8."""
    meta = META_CHARSET_RE.search(body[:2048])
    for encoding in (header_charset, meta.group(1).decode("ascii") if meta else None):
        if encoding:
            try:
                return body.decode(encoding, errors="replace")
            except LookupError:  # a charset name Python does not know
                continue
    return body.decode("utf-8", errors="replace")
