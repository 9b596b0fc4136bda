"""A fake website on 127.0.0.1 for crawler tests, described as a dict of path -> Response.

The port is only known once the site runs, so "{site}" in a body or a header value is replaced by
the site's base URL (as in `sitemap("{site}/about")`).

The site is on loopback, which the crawler refuses unless allowed: crawls name `site.host` in their
allow-list (`CrawlConfig.allow_hosts`, or TALIA_CRAWL_ALLOW_HOSTS through the `allow_local_sites`
fixture).
"""

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTML = "text/html; charset=utf-8"
SITE_MARKER = "{site}"


@dataclass(frozen=True)
class Response:
    """What the site answers for one path; `delay_s` waits before answering, to simulate a slow page;
    `drip_s` sends the body one byte at a time, this long apart (until the site's drips are released).
    """

    status: int = 200
    content_type: str = HTML
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drip_s: float = 0.0


def page(title: str, body: str, lang: str = "en") -> Response:
    """An HTML page with a <title> and the given <body> markup."""
    return Response(
        body=f'<!doctype html><html lang="{lang}"><head><title>{title}</title></head><body>{body}</body></html>'
    )


def redirect(location: str, status: int = 301) -> Response:
    return Response(status=status, content_type="", headers={"Location": location})


def sitemap(*urls: str) -> Response:
    locations = "".join(f"<url><loc>{url}</loc></url>" for url in urls)
    return Response(
        content_type="application/xml",
        body=f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locations}</urlset>',
    )


def sitemap_index(*urls: str) -> Response:
    locations = "".join(f"<sitemap><loc>{url}</loc></sitemap>" for url in urls)
    return Response(
        content_type="application/xml",
        body=f'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locations}</sitemapindex>',
    )


def robots(text: str) -> Response:
    return Response(content_type="text/plain", body=text)


class FakeSite:
    """A running site: build URLs with `url()`, read what was requested in `requests`."""

    def __init__(self, routes: dict[str, Response], base_url: str) -> None:
        self.routes = routes
        self.base_url = base_url
        self.requests: Counter[str] = Counter()  # request target (path and query) -> times requested
        self.user_agents: set[str] = set()
        self.released = threading.Event()  # set: dripping bodies are sent at once
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        """ "127.0.0.1:PORT", as an allow-list entry names it."""
        return self.base_url.removeprefix("http://")

    def url(self, path: str) -> str:
        return self.base_url + path

    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def record(self, target: str, user_agent: str) -> None:
        with self._lock:
            self.requests[target] += 1
            self.user_agents.add(user_agent)


@contextmanager
def serve_site(routes: dict[str, Response]) -> Iterator[FakeSite]:
    """Serve `routes` (keyed by path, query included) on a free port; unknown paths get a 404."""
    server = _SiteServer(routes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.site
    finally:
        server.site.released.set()
        server.shutdown()
        server.server_close()
        thread.join()


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow handler must not hold up the end of a test

    def __init__(self, routes: dict[str, Response]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        host, port = self.server_address[:2]
        self.site = FakeSite(routes, f"http://{host!s}:{port}")


class _Handler(BaseHTTPRequestHandler):
    server: _SiteServer

    def do_GET(self) -> None:
        site = self.server.site
        site.record(self.path, self.headers.get("User-Agent", ""))
        response = site.routes.get(self.path, Response(status=404, content_type="text/plain", body="not found"))
        time.sleep(response.delay_s)
        body = response.body.encode() if isinstance(response.body, str) else response.body
        body = body.replace(SITE_MARKER.encode(), site.base_url.encode())
        try:
            self.send_response(response.status)
            if response.content_type:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in response.headers.items():
                self.send_header(name, value.replace(SITE_MARKER, site.base_url))
            self.end_headers()
            if response.drip_s:
                self._drip(body, response.drip_s)
            else:
                self.wfile.write(body)
        except ConnectionError:  # the crawler gave up on this page (a timeout, a skipped PDF): that is fine
            pass

    def _drip(self, body: bytes, interval_s: float) -> None:
        """A slow, steady peer: every read the client makes succeeds, but the body never seems to end."""
        for position in range(len(body)):
            if self.server.site.released.wait(interval_s):
                self.wfile.write(body[position:])
                return
            self.wfile.write(body[position : position + 1])
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""
