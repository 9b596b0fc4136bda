"""The demo landing page and the widget script."""

from __future__ import annotations

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from conversations import profile
from conversations.inbox import normalise_locale

WIDGET_PATH = "widget/widget.js"


@require_GET
def demo(request: HttpRequest) -> HttpResponse:
    """A customer's page, embedding the widget exactly as one would."""
    base_url = request.build_absolute_uri("/").rstrip("/")
    context = {
        "base_url": base_url,
        "widget_url": f"{base_url}/widget.js",
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
        "widget_url": f"{base_url}/widget.js",
        "token": settings.TALIA_WEBCHAT_PUBLIC_TOKEN,
        "locale": locale,
        "business_name": profile.current().business_name,
    }
    with translation.override(locale):
        response = render(request, "channels_web/chat.html", context)
    response["Content-Language"] = locale
    return response


@require_GET
@cache_control(public=True, max_age=300)
def widget_js(request: HttpRequest) -> HttpResponseBase:
    """`/widget.js`: a stable URL for sites to embed, served from the static files."""
    path = finders.find(WIDGET_PATH)
    if not path:
        # Collected deployments serve it from STATIC_ROOT.
        collected = settings.STATIC_ROOT / WIDGET_PATH
        if not collected.exists():
            raise Http404("widget.js is missing")
        path = str(collected)
    response = FileResponse(open(path, "rb"), content_type="application/javascript; charset=utf-8")  # noqa: SIM115
    response["Access-Control-Allow-Origin"] = "*"
    return response
