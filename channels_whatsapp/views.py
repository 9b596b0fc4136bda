"""Twilio's two WhatsApp webhooks: inbound messages and delivery statuses.

Both are form-encoded POSTs signed with X-Twilio-Signature, checked with the official validator over
the public URL Twilio called (TALIA_PUBLIC_BASE_URL behind a proxy, query string included) and every
posted parameter. Unsigned or forged: 403 with a JSON error, nothing stored. The message webhook answers
an empty TwiML <Response/> as soon as the message is committed; the assistant's turn and the media
download run in Celery.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.messaging_response import MessagingResponse

from channels_whatsapp import services
from conversations.inbox import InboxError
from talia import twilio

logger = logging.getLogger("talia.whatsapp")


def twiml(response: MessagingResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/whatsapp/webhook (alias /webhooks/twilio/whatsapp): one inbound WhatsApp message."""
    if (refusal := twilio.refused(request, "WhatsApp")) is not None:
        return refusal
    try:
        services.receive_webhook(request.POST)
    except services.InvalidWebhook as invalid:
        return twilio.error(400, "invalid", "This is not a WhatsApp message TalIA can store.", invalid.fields)
    except InboxError as refused_by_inbox:
        return twilio.error(400, "invalid", str(refused_by_inbox))
    return twiml(MessagingResponse())


@csrf_exempt
@require_POST
def status(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/whatsapp/status: Twilio's delivery status for a message TalIA sent."""
    if (refusal := twilio.refused(request, "WhatsApp")) is not None:
        return refusal
    try:
        callback = services.parse_status(request.POST)
    except services.InvalidWebhook as invalid:
        return twilio.error(400, "invalid", "This is not a Twilio status callback.", invalid.fields)
    if callback is None:
        return JsonResponse({"status": "ignored"})
    return JsonResponse({"status": services.record_callback(callback)})
