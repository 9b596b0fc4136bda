"""Twilio's REST API for the voice channel: replacing a live call's TwiML (`calls(sid).update(twiml=…)`).

The official SDK's client, built from the same settings as WhatsApp's (channel apps do not import each
other): TALIA_TWILIO_ACCOUNT_SID with TALIA_TWILIO_AUTH_TOKEN or an API key, and TALIA_TWILIO_API_BASE
to send every https://api.twilio.com request elsewhere (the fake Twilio of the tests and the dev phone).
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

TWILIO_API = "https://api.twilio.com"


class NotConfigured(RuntimeError):
    pass


class RebasedHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending what is meant for api.twilio.com to `base` instead."""

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_API + "/"):
            url = self.base + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def client() -> Client:
    """Twilio's client for the configured account; raises NotConfigured without credentials."""
    return _client(
        settings.TALIA_TWILIO_ACCOUNT_SID,
        settings.TALIA_TWILIO_AUTH_TOKEN,
        settings.TALIA_TWILIO_API_KEY_SID,
        settings.TALIA_TWILIO_API_KEY_SECRET,
        settings.TALIA_TWILIO_API_BASE,
        settings.TALIA_TWILIO_TIMEOUT_S,
    )


@functools.lru_cache(maxsize=4)
def _client(account_sid: str, token: str, key_sid: str, key_secret: str, base: str, timeout: float) -> Client:
    if not account_sid or not (token or (key_sid and key_secret)):
        raise NotConfigured("Set TALIA_TWILIO_ACCOUNT_SID and TALIA_TWILIO_AUTH_TOKEN (or an API key).")
    http_client = RebasedHttpClient(base, timeout=timeout) if base else TwilioHttpClient(timeout=timeout)
    if key_sid and key_secret:
        return Client(key_sid, key_secret, account_sid, http_client=http_client)
    return Client(account_sid, token, http_client=http_client)


def update_call(call_sid: str, twiml: str) -> None:
    """Make the live call `call_sid` run `twiml` now (ends its media stream). Raises the SDK's errors."""
    client().calls(call_sid).update(twiml=twiml)
