"""The demo landing page, the widget script and the files in the visitor's messages."""

from __future__ import annotations

import functools
import hashlib
import os
from uuid import UUID

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_GET

from channels_web import files, ratelimit, security, services
from conversations import attachments, profile
from conversations.inbox import normalise_locale
from talia.api import error_body

WIDGET_PATH = "widget/widget.js"
# `/widget.js?v=<the script's content hash>` never changes: browsers and CDNs may keep it for a year.
# The bare `/widget.js` (what customers paste into their sites) is kept only briefly, so a release
# reaches every site within minutes.
WIDGET_VERSIONED_CACHE = "public, max-age=31536000, immutable"
WIDGET_STABLE_CACHE = "public, max-age=300"


def widget_file() -> str | None:
    """Where the widget script is: the static source folders, else STATIC_ROOT (after collectstatic)."""
    path = finders.find(WIDGET_PATH)
    if path:
        return str(path)
    collected = settings.STATIC_ROOT / WIDGET_PATH
    return str(collected) if collected.exists() else None


@functools.lru_cache(maxsize=4)
def _content_version(path: str, mtime_ns: int, size: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:12]


def widget_version() -> str:
    """A short hash of the widget script's content (recomputed only when the file changes)."""
    path = widget_file()
    if path is None:
        return ""
    stat = os.stat(path)
    return _content_version(path, stat.st_mtime_ns, stat.st_size)


def widget_url(base_url: str) -> str:
    """The versioned URL TalIA's own pages load the widget from."""
    version = widget_version()
    return f"{base_url}/widget.js?v={version}" if version else f"{base_url}/widget.js"


@require_GET
def demo(request: HttpRequest) -> HttpResponse:
    """A customer's page, embedding the widget exactly as one would."""
    base_url = request.build_absolute_uri("/").rstrip("/")
    context = {
        "base_url": base_url,
        "widget_url": widget_url(base_url),
        "token": settings.TALIA_WEBCHAT_PUBLIC_TOKEN,
    }
    return render(request, "channels_web/demo.html", context)


@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    """`/chat/` (and `/widget.html`): the widget alone, full page, for links, emails and QR codes.

    The locale comes from `?lang=` (es, en) or else the browser's Accept-Language (LocaleMiddleware).
    """
    locale = normalise_locale(request.GET.get("lang")) or request.LANGUAGE_CODE
    base_url = request.build_absolute_uri("/").rstrip("/")
    context = {
        "base_url": base_url,
        "widget_url": widget_url(base_url),
        "token": settings.TALIA_WEBCHAT_PUBLIC_TOKEN,
        "locale": locale,
        "business_name": profile.current().business_name,
    }
    with translation.override(locale):
        response = render(request, "channels_web/chat.html", context)
    response["Content-Language"] = locale
    return response


@require_GET
def widget_js(request: HttpRequest) -> HttpResponseBase:
    """`/widget.js`: a stable URL for sites to embed, served from the static files.

    With `?v=` naming the current version it is cached for a year (the URL changes with the content);
    without it, or with an older version, for five minutes.
    """
    path = widget_file()
    if path is None:
        raise Http404("widget.js is missing")
    response = FileResponse(open(path, "rb"), content_type="application/javascript; charset=utf-8")  # noqa: SIM115
    current = request.GET.get("v") == widget_version()
    response["Cache-Control"] = WIDGET_VERSIONED_CACHE if current else WIDGET_STABLE_CACHE
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _refused(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status, headers=headers)


@require_GET
def attachment(request: HttpRequest, message_id: UUID, index: int) -> HttpResponseBase:
    """A file of a web chat message, for its visitor: by the signed `t` of the widget's link, or by
    `session_id` (with the widget token, as the API asks). Anyone else gets 404, as for a missing file.

    Images are served inline (the widget shows them in an <img>), everything else as a download; with
    nosniff and a sandboxing CSP either way, so a file never runs as a page of TalIA's origin.
    """
    if not security.origin_allowed(request.headers.get("Origin"), request.get_host()):
        return _refused(403, "origin_not_allowed", "This site may not use the chat: its origin is not allowed.")
    signature = request.GET.get("t", "")
    session_id = request.GET.get("session_id", "")
    if not signature:
        if not security.token_ok(request.headers.get("X-TalIA-Token")):
            return _refused(401, "invalid_token", "A valid widget token is required (X-TalIA-Token header).")
        if not services.SESSION_ID.match(session_id):
            return _refused(400, "invalid", "Send the signed link's t, or your session_id.")
        ip = security.client_ip(
            request.META.get("REMOTE_ADDR"), {"x-forwarded-for": request.headers.get("X-Forwarded-For", "")}
        )
        wait = ratelimit.check_visitor(session_id, ip)
        if wait is not None:
            return _refused(
                429, "rate_limited", f"Too many requests. Try again in {wait} seconds.", **{"Retry-After": str(wait)}
            )
    item = files.visitor_file(message_id, index, session_id=session_id, signature=signature)
    if item is None:
        return _refused(404, "not_found", "No such file, or the link has expired.")
    response = attachments.file_response(item, inline=attachments.is_inline(item))
    response["Cache-Control"] = "private, max-age=300"
    # The widget lives on the customer's site: its <img> loads the file from TalIA's origin.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
