"""Twilio's two WhatsApp webhooks: inbound messages and delivery statuses.

Both are form-encoded POSTs signed with X-Twilio-Signature, checked with the official validator over
the public URL Twilio called (TALIA_PUBLIC_BASE_URL behind a proxy, query string included) and every
posted parameter. Unsigned or forged: 403 with a JSON error, nothing stored. The message webhook answers
an empty TwiML <Response/> as soon as the message is committed; the assistant's turn and the media
download run in Celery.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.messaging_response import MessagingResponse

from channels_whatsapp import services, twilio_client
from conversations.inbox import InboxError
from talia.api import error_body

logger = logging.getLogger("talia.whatsapp")

FORM = "application/x-www-form-urlencoded"


def error(status: int, code: str, message: str, fields: dict[str, Any] | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, fields), status=status)


def public_url(request: HttpRequest) -> str:
    """The URL Twilio called: behind a proxy the configured public base plus the path and query."""
    base = settings.TALIA_PUBLIC_BASE_URL
    return f"{base}{request.get_full_path()}" if base else request.build_absolute_uri()


def refused(request: HttpRequest) -> JsonResponse | None:
    """The 4xx answer for a request that is not a well-formed Twilio webhook, or None when it is."""
    try:
        params = request.POST
    except RequestDataTooBig:
        return error(413, "too_large", "The request body is too large.")
    except SuspiciousOperation:
        return error(400, "bad_request", "The form could not be read.")
    if settings.TALIA_TWILIO_VALIDATE_SIGNATURES:
        validator = twilio_client.validator()
        if validator is None:
            logger.error("A WhatsApp webhook was refused: TALIA_TWILIO_AUTH_TOKEN is not set")
            return error(403, "signature_unverifiable", "Twilio webhooks cannot be verified: no Auth Token is set.")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            return error(403, "missing_signature", "The X-Twilio-Signature header is required.")
        if not validator.validate(public_url(request), params, signature):
            logger.warning("Forged or misrouted WhatsApp webhook refused (URL %s)", public_url(request))
            return error(403, "invalid_signature", "The X-Twilio-Signature does not match this request.")
    if request.content_type != FORM:
        return error(415, "unsupported_media_type", f"Twilio webhooks are posted as {FORM}.")
    return None


def twiml(response: MessagingResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/whatsapp/webhook (alias /webhooks/twilio/whatsapp): one inbound WhatsApp message."""
    if (refusal := refused(request)) is not None:
        return refusal
    try:
        services.receive_webhook(request.POST)
    except services.InvalidWebhook as invalid:
        return error(400, "invalid", "This is not a WhatsApp message TalIA can store.", invalid.fields)
    except InboxError as refused_by_inbox:
        return error(400, "invalid", str(refused_by_inbox))
    return twiml(MessagingResponse())


@csrf_exempt
@require_POST
def status(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/whatsapp/status: Twilio's delivery status for a message TalIA sent."""
    if (refusal := refused(request)) is not None:
        return refusal
    try:
        callback = services.parse_status(request.POST)
    except services.InvalidWebhook as invalid:
        return error(400, "invalid", "This is not a Twilio status callback.", invalid.fields)
    if callback is None:
        return JsonResponse({"status": "ignored"})
    return JsonResponse({"status": services.record_callback(callback)})
