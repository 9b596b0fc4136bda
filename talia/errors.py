"""Error answers: JSON on API paths, a friendly page elsewhere, never a traceback page on an API path.

- An unreachable data store is a state, not a bug: a database or Redis error that reaches a view (or a
  middleware) becomes a 503 that names the part, `{"error": {"code": "database_unavailable" |
  "redis_unavailable", "message"}}` on API paths and templates/503.html elsewhere, with Retry-After.
  DRF views get the same answer from talia.api.exception_handler, which keeps their CORS headers.
- Django's error handlers (handler400/403/404/500 in talia/urls.py) answer JSON on API paths and render
  templates/<status>.html elsewhere.
- With DEBUG on, Django answers some errors with its technical pages before any handler runs (an
  unmatched URL, an uncaught exception); ErrorPagesMiddleware replaces them with JSON on API paths.
  Elsewhere DEBUG keeps them, except for outages, which always get the friendly 503.

A message that was stored before Redis failed is still a success (the enqueue after commit only logs,
and conversations.tasks.requeue_unanswered_messages catches up), so these 503s come only from requests
that could not do their work.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import kombu.exceptions
import redis.exceptions
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger(__name__)

# Paths whose clients are programs: they always get `{"error": {...}}`.
API_PREFIXES = ("/api/", "/console/api/")
API_PATHS = frozenset({"/health"})

RETRY_AFTER_S = 10

OUTAGES: tuple[tuple[tuple[type[BaseException], ...], str, str], ...] = (
    (
        (OperationalError, InterfaceError),
        "database_unavailable",
        "The database is unavailable. Nothing was lost; please try again shortly.",
    ),
    (
        (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, kombu.exceptions.OperationalError),
        "redis_unavailable",
        "Redis is unavailable. Please try again shortly.",
    ),
)

CODES = {
    400: ("bad_request", "The request could not be understood."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("too_large", "The request is too large."),
    500: ("server_error", "Something went wrong on our side; it has been logged."),
    503: ("unavailable", "The service is unavailable. Please try again shortly."),
}

# Headers of an error answer worth keeping when its body is replaced by JSON.
KEPT_HEADERS = ("Allow", "Retry-After", "Vary")

_OUTAGE_ATTR = "_talia_outage"


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES) or path in API_PATHS


def outage(exc: BaseException | None) -> tuple[str, str] | None:
    """(code, message) when `exc`, or what caused it, says a data store is unreachable."""
    seen = 0
    while exc is not None and seen < 5:
        for kinds, code, message in OUTAGES:
            if isinstance(exc, kinds):
                return code, message
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def log_outage(request: HttpRequest | Any, code: str, exc: BaseException) -> None:
    # One line, no traceback: the cause is outside our code and /health reports it too.
    logger.warning("%s %s answered 503 %s: %s: %s", request.method, request.path, code, type(exc).__name__, exc)


def json_error(status: int, code: str | None = None, message: str | None = None) -> JsonResponse:
    default_code, default_message = CODES.get(status, ("error", "Request refused."))
    body = {"error": {"code": code or default_code, "message": message or default_message}}
    return JsonResponse(body, status=status)


def outage_response(request: HttpRequest, code: str, message: str) -> HttpResponse:
    if is_api_path(request.path):
        response: HttpResponse = json_error(503, code, message)
    else:
        response = page(request, 503, {"part": code})
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def page(request: HttpRequest, status: int, context: dict[str, Any] | None = None) -> HttpResponse:
    """templates/<status>.html; plain text if even that cannot be rendered (it must never fail)."""
    try:
        body = loader.render_to_string(f"{status}.html", context or {}, request=request)
    except Exception:
        logger.exception("Could not render the %s page", status)
        return HttpResponse(CODES.get(status, ("", "Error"))[1], status=status, content_type="text/plain")
    return HttpResponse(body, status=status)


def error_response(request: HttpRequest, status: int) -> HttpResponse:
    return json_error(status) if is_api_path(request.path) else page(request, status)


# --- Django's error handlers (talia/urls.py) -------------------------------------------------------


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Called while the exception is being handled, wherever it was raised (a middleware included).
    found = outage(sys.exc_info()[1])
    if found is not None:
        return outage_response(request, *found)
    return error_response(request, 500)


# --- The middleware --------------------------------------------------------------------------------


def _remember_exception(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """Note an outage on the request, for the DEBUG case where Django renders the technical 500 page."""
    found = outage(sys.exc_info()[1])
    if request is not None and found is not None:
        setattr(request, _OUTAGE_ATTR, found)


got_request_exception.connect(_remember_exception, dispatch_uid="talia.errors.remember_exception")


class ErrorPagesMiddleware(MiddlewareMixin):
    """Outages as 503s naming the part; JSON for every error on API paths. Place it near the top."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        found = outage(exception)
        if found is None:
            return None  # Django's own handling: logged, then handler500 (or the DEBUG page)
        log_outage(request, found[0], exception)
        return outage_response(request, *found)

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code < 400:
            return response
        found = getattr(request, _OUTAGE_ATTR, None)
        if found is not None and response.status_code == 500:
            return outage_response(request, *found)
        if is_api_path(request.path) and not response.get("Content-Type", "").startswith("application/json"):
            replaced = json_error(response.status_code)
            for header in KEPT_HEADERS:
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response
