"""One error shape for every API: `{"error": {"code", "message", "fields"?}}` with a 4xx/5xx status."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from talia.errors import RETRY_AFTER_S, log_outage, outage

DEFAULT_CODES = {
    exceptions.ParseError: "malformed_json",
    exceptions.NotAuthenticated: "invalid_token",
    exceptions.AuthenticationFailed: "invalid_token",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}

RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_S)}


class ApiError(exceptions.APIException):
    """An error with our own code: `raise ApiError(403, "origin_not_allowed", "…")`."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # A database or Redis outage: a 503 naming the part (talia/errors.py), with the view's CORS headers.
    found = outage(exc)
    if found is not None:
        request = context.get("request")
        if request is not None:
            log_outage(request, found[0], exc)
        return Response(error_body(*found), status=status.HTTP_503_SERVICE_UNAVAILABLE, headers=RETRY_AFTER)
    # Django's own 404 and 403 (get_object_or_404, PermissionDenied) as their DRF counterparts.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):  # a form body past DATA_UPLOAD_MAX_MEMORY_SIZE (read for CSRF)
        exc = ApiError(413, "too_large", "The request body is too large.")
    elif isinstance(exc, SuspiciousOperation):  # too many form fields or files, and the like
        exc = ApiError(400, "bad_request", "The request was refused.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API exception: Django's 500 handling (and logging) applies
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", "Some fields are invalid.", plain_errors(fields))
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    if isinstance(exc, ApiError):
        code = exc.error_code
    else:
        code = next((c for kind, c in DEFAULT_CODES.items() if isinstance(exc, kind)), "error")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    message = str(detail) if not isinstance(detail, list | dict) else "Request refused."
    wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
    if wait is not None:
        message = f"Too many requests. Try again in {int(wait) + 1} seconds."
    response.data = error_body(code, message)
    return response


def plain_errors(detail: Any) -> Any:
    """ErrorDetail objects -> plain strings, recursively (a serializer's errors as JSON)."""
    if isinstance(detail, dict):
        return {key: plain_errors(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [plain_errors(value) for value in detail]
    return str(detail)
