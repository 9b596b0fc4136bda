"""Who may talk to the web chat: the public token, allowed origins (CORS) and the client's real IP.

CORS headers come from django-cors-headers (CorsMiddleware below, configured in settings), only on
/api/webchat/ paths: for TALIA_WEBCHAT_ALLOWED_ORIGINS and the site's own origin, the same origins
origin_allowed() admits. A request from any other origin is refused by the view (403) and by the socket.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import corsheaders.middleware
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.crypto import constant_time_compare

# The widget's REST API: the only paths with CORS (settings.CORS_URLS_REGEX says the same).
WEBCHAT_API_PREFIX = "/api/webchat/"


def token_ok(given: str | None) -> bool:
    expected = settings.TALIA_WEBCHAT_PUBLIC_TOKEN
    return not expected or constant_time_compare(given or "", expected)


def origin_allowed(origin: str | None, host: str) -> bool:
    """No Origin (not a browser, or same-origin GET), the site's own origin, or a configured one."""
    if not origin:
        return True
    origin = origin.rstrip("/")
    if origin in settings.TALIA_WEBCHAT_ALLOWED_ORIGINS:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def cors_origin_allowed(sender: object, request: HttpRequest, **kwargs: object) -> bool:
    """django-cors-headers' check_request_enabled hook: origin_allowed() on the widget API.

    CORS_ALLOWED_ORIGINS holds the configured origins, but the site's own origin depends on the Host of
    each request, so it is vouched for here; applying the whole rule also follows the live
    TALIA_WEBCHAT_ALLOWED_ORIGINS (override_settings in tests). Other paths never get CORS this way.
    """
    origin = request.headers.get("Origin")
    if not origin or not request.path_info.startswith(WEBCHAT_API_PREFIX):
        return False
    try:
        host = request.get_host()
    except DisallowedHost:
        return False  # answered 400 further in; no CORS headers for it
    return origin_allowed(origin, host)


class CorsMiddleware(corsheaders.middleware.CorsMiddleware):
    """django-cors-headers, with two local choices for the widget's preflight (OPTIONS).

    A preflight from a disallowed origin goes on to the view, which answers the usual 403
    `origin_not_allowed`; an allowed one is answered here with 204 No Content.
    """

    def check_preflight(self, request: HttpRequest) -> HttpResponseBase | None:
        response = super().check_preflight(request)
        if response is None:
            return None
        origin = request.headers.get("Origin") or ""
        if not self.origin_found_in_white_lists(origin, urlsplit(origin)) and not self.check_signal(request):
            return None  # no or a foreign origin: the view decides (403 origin_not_allowed)
        response.status_code = 204
        return response


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in settings.TALIA_TRUSTED_PROXIES:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_ip(peer: str | None, headers: Mapping[str, str]) -> str:
    """The peer address, or the first untrusted hop of X-Forwarded-For when the peer is a trusted proxy."""
    address = peer or ""
    if address and _trusted(address):
        hops = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]
        for hop in reversed(hops):
            address = hop
            if not _trusted(hop):
                break
    return address
