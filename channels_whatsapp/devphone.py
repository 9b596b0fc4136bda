"""A dev phone: with DEBUG on, staff can play a WhatsApp contact without a Twilio account.

`/dev/phone/` is a page; typing a message posts a webhook to TalIA exactly as Twilio would (form-encoded,
a fresh MessageSid, signed with the account's Auth Token over the public webhook URL). TalIA's replies
are read back from the Twilio REST API TalIA sends to, through the official client: with `make run` and
no real credentials that is the built-in fake Twilio (talia/testing/fake_twilio.py), which also posts the
status callbacks, so the statuses advance as they would on a phone.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import requests
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from twilio.request_validator import RequestValidator

from channels_whatsapp import services, twilio_client
from conversations.console.permissions import supervisor_required
from talia.api import error_body

NUMBER_DEFAULT = "34600000001"


def _debug_only(request: HttpRequest) -> None:
    if not settings.DEBUG:
        raise Http404


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def webhook_url(request: HttpRequest) -> str:
    path = reverse("whatsapp:webhook")
    base = settings.TALIA_PUBLIC_BASE_URL
    return f"{base}{path}" if base else request.build_absolute_uri(path)


@supervisor_required
@require_GET
def phone(request: HttpRequest) -> HttpResponse:
    _debug_only(request)
    return render(
        request,
        "channels_whatsapp/dev_phone.html",
        {
            "number": NUMBER_DEFAULT,
            "business": settings.TALIA_TWILIO_WHATSAPP_FROM or settings.TALIA_TWILIO_MESSAGING_SERVICE_SID,
            "fake": bool(settings.TALIA_TWILIO_API_BASE),
        },
    )


@supervisor_required
@require_POST
def send(request: HttpRequest) -> JsonResponse:
    """POST {number, name, text}: sent to TalIA's webhook as Twilio would send it."""
    _debug_only(request)
    try:
        data: Any = json.loads(request.body or b"{}")
    except ValueError:
        return _error(400, "malformed_json", "The body must be JSON.")
    if not isinstance(data, dict):
        return _error(400, "malformed_json", "The body must be a JSON object.")
    number = str(data.get("number") or "").lstrip("+")
    text = str(data.get("text") or "")
    if not services.WA_ID.match(number) or not text.strip():
        return _error(400, "invalid", _("A number (digits) and a message are required."))
    if not settings.TALIA_TWILIO_AUTH_TOKEN:
        return _error(409, "not_configured", "TALIA_TWILIO_AUTH_TOKEN is needed to sign the webhook.")
    sid = "SM" + secrets.token_hex(16)
    params = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": settings.TALIA_TWILIO_ACCOUNT_SID,
        "From": f"whatsapp:+{number}",
        "To": settings.TALIA_TWILIO_WHATSAPP_FROM or "whatsapp:+14155238886",
        "WaId": number,
        "ProfileName": str(data.get("name") or "")[:100],
        "Body": text,
        "NumMedia": "0",
        "NumSegments": "1",
        "MessageType": "text",
        "ApiVersion": "2010-04-01",
    }
    url = webhook_url(request)
    signature = RequestValidator(settings.TALIA_TWILIO_AUTH_TOKEN).compute_signature(url, params)
    try:
        answer = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)
    except requests.RequestException as exc:
        return _error(502, "webhook_unreachable", f"{url}: {type(exc).__name__}")
    return JsonResponse({"message_sid": sid, "status": answer.status_code, "answer": answer.text[:500]})


@supervisor_required
@require_GET
def messages(request: HttpRequest) -> JsonResponse:
    """GET ?number=: what TalIA sent to that number, newest first, as Twilio's API lists it."""
    _debug_only(request)
    number = request.GET.get("number", "").lstrip("+")
    if not services.WA_ID.match(number):
        return _error(400, "invalid", _("A number (digits) is required."))
    try:
        listed = twilio_client.client().messages.list(to=f"whatsapp:+{number}", limit=50)
    except Exception as exc:
        error = twilio_client.as_error(exc)
        return _error(502, "twilio_unavailable", str(error))
    return JsonResponse(
        {
            "messages": [
                {
                    "sid": m.sid,
                    "body": m.body,
                    "status": m.status,
                    "date_created": m.date_created.isoformat() if m.date_created else None,
                }
                for m in listed
            ]
        }
    )
