"""Checks every Twilio webhook needs, whatever the channel: the validator, the public URL, the refusal.

Neutral ground for the channel apps (which must not import each other): a webhook is a form-encoded
POST signed with X-Twilio-Signature, checked with the official `RequestValidator` (Auth Token from
TALIA_TWILIO_AUTH_TOKEN) over the public URL Twilio called (TALIA_PUBLIC_BASE_URL behind a proxy, query
string included) and every posted parameter. `refused()` returns the 4xx JSON answer for a request that
is not a well-formed, signed Twilio webhook, or None; nothing is read or stored before it says None.
Turning the check off (TALIA_TWILIO_VALIDATE_SIGNATURES=false) is allowed only with DEBUG (settings).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, JsonResponse
from twilio.request_validator import RequestValidator

from talia.api import error_body

FORM = "application/x-www-form-urlencoded"


def error(status: int, code: str, message: str, fields: dict[str, Any] | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, fields), status=status)


def validator() -> RequestValidator | None:
    """Checks X-Twilio-Signature with the account's Auth Token; None when no token is configured."""
    token = settings.TALIA_TWILIO_AUTH_TOKEN
    return RequestValidator(token) if token else None


def public_url(request: HttpRequest) -> str:
    """The URL Twilio called: behind a proxy the configured public base plus the path and query."""
    base = settings.TALIA_PUBLIC_BASE_URL
    return f"{base}{request.get_full_path()}" if base else request.build_absolute_uri()


def refused(request: HttpRequest, area: str = "Twilio") -> JsonResponse | None:
    """The 4xx answer for a request that is not a well-formed, signed Twilio webhook, or None when it is.

    `area` names the webhook ("Voice", "WhatsApp"); refusals are logged to its area's log (talia.voice...).
    """
    logger = logging.getLogger(f"talia.{area.lower()}")
    try:
        params = request.POST
    except RequestDataTooBig:
        return error(413, "too_large", "The request body is too large.")
    except SuspiciousOperation:
        return error(400, "bad_request", "The form could not be read.")
    if settings.TALIA_TWILIO_VALIDATE_SIGNATURES:
        checker = validator()
        if checker is None:
            logger.error("A %s webhook was refused: TALIA_TWILIO_AUTH_TOKEN is not set", area)
            return error(403, "signature_unverifiable", "Twilio webhooks cannot be verified: no Auth Token is set.")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            return error(403, "missing_signature", "The X-Twilio-Signature header is required.")
        if not checker.validate(public_url(request), params, signature):
            logger.warning("Forged or misrouted %s webhook refused (URL %s)", area, public_url(request))
            return error(403, "invalid_signature", "The X-Twilio-Signature does not match this request.")
    if request.content_type != FORM:
        return error(415, "unsupported_media_type", f"Twilio webhooks are posted as {FORM}.")
    return None
