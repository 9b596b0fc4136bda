"""WhatsApp's use of Twilio's REST API, and the one typed error its calls raise.

The client is the one every channel uses, `talia.twilio.rest_client()` (credentials from the settings,
TALIA_TWILIO_API_BASE rebasing every https://api.twilio.com URL to the fake Twilio of the tests and the
dev phone); media URLs Twilio hands us are rebased the same way (`rebase`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from conversations.registry import DeliveryError
from talia import twilio

TWILIO_API = twilio.TWILIO_API

# Twilio error codes TalIA explains to agents (https://www.twilio.com/docs/api/errors).
ERROR_MEANINGS = {
    "21211": "The 'To' number is not a valid phone number.",
    "21408": "Sending to this region is not enabled on the account.",
    "21610": "The contact has opted out (replied STOP).",
    "21614": "The 'To' number is not a mobile number.",
    "30003": "The phone is unreachable (off or without signal).",
    "30004": "The message was blocked by the carrier or the contact.",
    "30005": "Unknown destination: the number does not exist or is not on WhatsApp.",
    "30006": "The number cannot receive this message (landline or unreachable carrier).",
    "30007": "The message was filtered as spam by the carrier or WhatsApp.",
    "30008": "Unknown error delivering the message.",
    "63003": "The contact's number is not a WhatsApp number.",
    "63015": "The contact has not joined the WhatsApp sandbox.",
    "63016": "Outside the 24-hour window: only an approved template may be sent.",
    "63018": "WhatsApp's rate limit for this sender was exceeded.",
    "63024": "The recipient is not a valid WhatsApp user.",
}
# Codes a retry cannot fix: the number, the contact's choice or the window.
PERMANENT_CODES = frozenset({"21211", "21408", "21610", "21614", "63003", "63015", "63016", "63024", "30005", "30006"})


def error_text(code: str | int | None, message: str = "") -> str:
    """'63016: Outside the 24-hour window…' (Twilio's own message when the code is not one we explain)."""
    code_text = str(code) if code else ""
    meaning = ERROR_MEANINGS.get(code_text) or message
    return ": ".join(part for part in (code_text, meaning) if part)


class TwilioError(DeliveryError):
    """A failed call to Twilio; `permanent` says whether a retry can help, `code` is Twilio's error code."""

    def __init__(self, message: str, *, permanent: bool = False, code: str = "") -> None:
        super().__init__(message, permanent=permanent)
        self.code = code


def as_error(exc: Exception) -> TwilioError:
    """The typed error for what a Twilio call raised: rate limits, 5xx and network trouble are temporary."""
    if isinstance(exc, TwilioRestException):
        code = str(exc.code or "")
        permanent = code in PERMANENT_CODES or (400 <= exc.status < 500 and exc.status not in (408, 409, 429))
        return TwilioError(error_text(code, exc.msg) or f"HTTP {exc.status}", permanent=permanent, code=code)
    if isinstance(exc, requests.RequestException):
        return TwilioError(f"Twilio could not be reached: {type(exc).__name__}")
    return TwilioError(f"{type(exc).__name__}: {exc}")


rebase = twilio.rebase
configured = twilio.configured


def is_twilio_url(url: str) -> bool:
    """An https URL on a twilio.com host, or one under TALIA_TWILIO_API_BASE."""
    base = settings.TALIA_TWILIO_API_BASE
    if base and url.startswith(base + "/"):
        return True
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "twilio.com" or host.endswith(".twilio.com"))


def client() -> Client:
    """Twilio's client for the configured account (talia.twilio); a permanent TwilioError without credentials."""
    try:
        return twilio.rest_client()
    except twilio.NotConfigured as exc:
        raise TwilioError(f"Twilio is not configured: {exc}", permanent=True) from exc


def fetch(url: str) -> tuple[bytes, str]:
    """GET a Twilio URL (a media file) with the account's credentials: (body, content type).

    Through the SDK client's own HTTP session (its pool, rebased like its API calls), not its request()
    whose Response keeps the body only as text. Twilio answers media URLs with a redirect to its storage;
    requests drops the credentials when the redirect leaves Twilio's host.
    """
    if not is_twilio_url(url):
        # The account's credentials go only to Twilio (or the configured stand-in for it).
        raise TwilioError("Not a Twilio media URL; it was not fetched.", permanent=True)
    twilio = client()
    http_client = twilio.http_client
    session = getattr(http_client, "session", None) or requests.Session()
    target = rebase(url, settings.TALIA_TWILIO_API_BASE)
    try:
        response = session.get(target, auth=twilio.auth, timeout=settings.TALIA_TWILIO_TIMEOUT_S, allow_redirects=True)
    except requests.RequestException as exc:
        raise as_error(exc) from exc
    if response.status_code != 200:
        raise TwilioError(
            f"Twilio answered {response.status_code} for a media file",
            permanent=response.status_code in (401, 403, 404, 410),
        )
    return response.content, response.headers.get("Content-Type", "application/octet-stream")
