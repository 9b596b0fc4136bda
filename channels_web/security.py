"""Who may talk to the web chat: the public token, allowed origins (CORS) and the client's real IP."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.crypto import constant_time_compare


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


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, X-TalIA-Token",
        "Access-Control-Expose-Headers": "Retry-After",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


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
