"""What every Twilio door needs, whatever the channel: the webhook check and the REST client.

The REST client (`rest_client()`): the official SDK's `Client` for TALIA_TWILIO_ACCOUNT_SID with
TALIA_TWILIO_AUTH_TOKEN or an API key, one per configuration and process, with TALIA_TWILIO_TIMEOUT_S,
and every https://api.twilio.com request sent to TALIA_TWILIO_API_BASE when that is set (the fake Twilio
of the tests and the dev phone). `NotConfigured` without credentials; each channel turns it into its
own permanent error.

The webhook check:

Neutral ground for the channel apps (which must not import each other): a webhook is a form-encoded
POST signed with X-Twilio-Signature, checked with the official `RequestValidator` (Auth Token from
TALIA_TWILIO_AUTH_TOKEN) over the public URL Twilio called (TALIA_PUBLIC_BASE_URL behind a proxy, query
string included) and every posted parameter. `refused()` returns the 4xx JSON answer for a request that
is not a well-formed, signed Twilio webhook, or None; nothing is read or stored before it says None.
Turning the check off (TALIA_TWILIO_VALIDATE_SIGNATURES=false) is allowed only with DEBUG (settings).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, JsonResponse
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from talia.api import error_body

FORM = "application/x-www-form-urlencoded"
TWILIO_API = "https://api.twilio.com"


class NotConfigured(RuntimeError):
    """No Account SID with an Auth Token or an API key: Twilio's REST API cannot be called."""


def configured() -> bool:
    """Whether TalIA has credentials to call Twilio's REST API."""
    return bool(settings.TALIA_TWILIO_ACCOUNT_SID) and bool(
        settings.TALIA_TWILIO_AUTH_TOKEN or (settings.TALIA_TWILIO_API_KEY_SID and settings.TALIA_TWILIO_API_KEY_SECRET)
    )


def rebase(url: str, base: str) -> str:
    """`url` on TALIA_TWILIO_API_BASE instead of api.twilio.com (unchanged when there is no base)."""
    if base and url.startswith(TWILIO_API + "/"):
        return base + url[len(TWILIO_API) :]
    return url


class RebasedHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending what is meant for api.twilio.com to `base` instead."""

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return super().request(method, rebase(url, self.base), *args, **kwargs)


def rest_client() -> Client:
    """Twilio's client for the configured account; raises NotConfigured without credentials."""
    if not configured():
        raise NotConfigured("Set TALIA_TWILIO_ACCOUNT_SID and TALIA_TWILIO_AUTH_TOKEN (or an API key).")
    return _client(
        settings.TALIA_TWILIO_ACCOUNT_SID,
        settings.TALIA_TWILIO_AUTH_TOKEN,
        settings.TALIA_TWILIO_API_KEY_SID,
        settings.TALIA_TWILIO_API_KEY_SECRET,
        settings.TALIA_TWILIO_API_BASE,
        settings.TALIA_TWILIO_TIMEOUT_S,
    )


# One client (and its connection pool) per configuration, per process.
@functools.lru_cache(maxsize=4)
def _client(account_sid: str, token: str, key_sid: str, key_secret: str, base: str, timeout: float) -> Client:
    http_client = RebasedHttpClient(base, timeout=timeout) if base else TwilioHttpClient(timeout=timeout)
    if key_sid and key_secret:
        return Client(key_sid, key_secret, account_sid, http_client=http_client)
    return Client(account_sid, token, http_client=http_client)


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
