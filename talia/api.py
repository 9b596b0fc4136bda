"""One error shape for every API: `{"error": {"code", "message", "fields"?}}` with a 4xx/5xx status.

`message` and `fields` are in English, whatever the request's language: they are for programs and logs.
On the console's API (`/console/api/`), whose errors an agent reads, the error also carries
`localized: {"message", "fields"?}`, the same texts in the request's language (docs/console-api.md). To say a
message in both languages it is kept as its msgid and parameters (`ApiError(409, "x", gettext_lazy("%(n)s…"),
n=…)`), and a `BilingualSerializer` validates a refused body a second time in English.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext
from rest_framework import exceptions, serializers, status
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


LOCALIZED_PREFIXES = ("/console/api/",)


def render_message(message: Any, params: dict[str, Any]) -> str:
    """A msgid (plain or lazy) with its `%(name)s` parameters, in the active language."""
    text = gettext(str(message))
    return (
        text % {name: str(value) if isinstance(value, Promise) else value for name, value in params.items()}
        if params
        else text
    )


def english(message: Any, params: dict[str, Any]) -> str:
    with translation.override("en"):
        return render_message(message, params)


class ApiError(exceptions.APIException):
    """An error with our own code: `raise ApiError(403, "origin_not_allowed", "…")`.

    `message` is an English msgid (plain or gettext_lazy) with its `params`: the body's `message` says it
    in English, `localized` (console API) in the request's language.
    """

    def __init__(self, status_code: int, code: str, message: Any, **params: Any) -> None:
        super().__init__(detail=english(message, params), code=code)
        self.status_code = status_code
        self.error_code = code
        self.message = message
        self.params = params


class BilingualValidationError(exceptions.ValidationError):
    """A refused body's errors in English (`detail`) and in the request's language (`localized`)."""

    def __init__(self, detail: Any, localized: Any) -> None:
        super().__init__(detail)
        self.localized = localized


class BilingualSerializer(serializers.Serializer):
    """A request body whose errors are said in English and in the request's language (the console's)."""

    def is_valid(self, *, raise_exception: bool = False) -> bool:
        valid = super().is_valid()
        if not valid and raise_exception:
            with translation.override("en"):
                in_english = type(self)(data=self.initial_data, context=self.context)
                in_english.is_valid()
                detail = plain_errors(in_english.errors)
            raise BilingualValidationError(detail, plain_errors(self.errors))
        return valid


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
    request = context.get("request")
    localized_too = request is not None and request.path.startswith(LOCALIZED_PREFIXES)
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", "Some fields are invalid.", plain_errors(fields))
        if localized_too:
            local = exc.localized if isinstance(exc, BilingualValidationError) else plain_errors(fields)
            if not isinstance(local, dict):
                local = {"non_field_errors": local}
            response.data["error"]["localized"] = {"message": gettext("Some fields are invalid."), "fields": local}
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    if isinstance(exc, ApiError):
        code = exc.error_code
    else:
        code = next((c for kind, c in DEFAULT_CODES.items() if isinstance(exc, kind)), "error")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    message = str(detail) if not isinstance(detail, list | dict) else "Request refused."
    local_message = message
    if isinstance(exc, ApiError):
        local_message = render_message(exc.message, exc.params)
    else:
        message = drf_in_english(exc, message, context)
    wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
    if wait is not None:
        message = f"Too many requests. Try again in {int(wait) + 1} seconds."
        local_message = gettext("Too many requests. Try again in %(seconds)d seconds.") % {"seconds": int(wait) + 1}
    response.data = error_body(code, message)
    if localized_too:
        response.data["error"]["localized"] = {"message": local_message}
    return response


def drf_in_english(exc: Exception, message: str, context: dict[str, Any]) -> str:
    """DRF's own refusals are said in the request's language when raised: say them again in English."""
    request = context.get("request")
    default = exc.default_detail if isinstance(exc, exceptions.APIException) else None
    as_raised = default is not None and message == str(default)
    with translation.override("en"):
        if isinstance(exc, exceptions.MethodNotAllowed) and request is not None:
            return str(exceptions.MethodNotAllowed(request.method).detail)
        if isinstance(exc, exceptions.UnsupportedMediaType) and request is not None:
            return str(exceptions.UnsupportedMediaType(request.content_type).detail)
        if as_raised:
            return str(default)
    return message


def plain_errors(detail: Any) -> Any:
    """ErrorDetail objects -> plain strings, recursively (a serializer's errors as JSON)."""
    if isinstance(detail, dict):
        return {key: plain_errors(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [plain_errors(value) for value in detail]
    return str(detail)
