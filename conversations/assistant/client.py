"""The one way TalIA talks to OpenAI (or an OpenAI-compatible server), and how its errors are read."""

from __future__ import annotations

import email.utils
import functools
import time

import openai
from django.conf import settings

from conversations.assistant.base import ProviderError

MAX_RETRY_AFTER_S = 120.0


class PreviousResponseMissing(ProviderError):
    """The provider no longer has the response we chain from (expired, deleted, another project)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


def lost_previous_response(error: ProviderError) -> bool:
    """Did a request chained with previous_response_id fail because that response is gone?

    OpenAI answers 400 naming `previous_response_id`; a plain 404 on the chained call means the same,
    unless it is about the model.
    """
    return isinstance(error, PreviousResponseMissing) or (error.status == 404 and error.code != "model_not_found")


@functools.cache
def _client(api_key: str, base_url: str | None, timeout: float) -> openai.OpenAI:
    # Retries are ours (the turn task retries with backoff and honours retry-after) so a worker never
    # sleeps inside the SDK.
    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


def openai_client() -> openai.OpenAI:
    return _client(settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.TALIA_OPENAI_TIMEOUT_S)


def retry_after(response: object) -> float | None:
    """Seconds the provider asked us to wait (retry-after-ms, retry-after in seconds or as a date)."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    if (value := headers.get("retry-after-ms")) is not None:
        try:
            return min(float(value) / 1000, MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    if (value := headers.get("retry-after")) is not None:
        try:
            return min(float(value), MAX_RETRY_AFTER_S)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return min(max(parsed.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER_S)
    return None


def provider_error(exc: openai.OpenAIError) -> ProviderError:
    """Translate an SDK exception into a ProviderError that says whether a retry can help."""
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return ProviderError(f"OpenAI unreachable: {exc}", retryable=True)
    if not isinstance(exc, openai.APIStatusError):
        return ProviderError(str(exc), retryable=False)
    body = exc.body if isinstance(exc.body, dict) else {}
    code = str(body.get("code") or "")
    if body.get("param") == "previous_response_id" or code == "previous_response_not_found":
        return PreviousResponseMissing(str(exc))
    if isinstance(exc, openai.RateLimitError):
        # Both quota exhaustion and real rate limits are 429s; only the latter passes with time.
        retryable = code != "insufficient_quota"
    else:
        retryable = exc.status_code in (408, 409) or exc.status_code >= 500
    return ProviderError(
        f"OpenAI answered {exc.status_code}: {exc.message}",
        retryable=retryable,
        retry_after=retry_after(exc.response),
        status=exc.status_code,
        code=code,
    )
