"""The dev phone's call tab: with DEBUG on, staff can call TalIA without a Twilio account.

`/dev/phone/call/` is a page (the WhatsApp tab is `/dev/phone/`; the two link to each other by URL in
their templates only, as channel apps never import each other). Its JSON endpoints play Twilio's part,
server-side, through channels_voice.simulator: `start` places a signed inbound call on TalIA's own
`/api/voice/inbound`; `say` posts what the caller "says" as a signed `SpeechResult` to the Gather action
of TalIA's last TwiML, following Redirects to `/api/voice/wait`; `hangup` sends the signed `completed`
status callback. Each answers the TwiML TalIA gave and the `<Say>` lines (text and language), which the
page reads aloud with the browser's speech synthesis.

Invariants: every endpoint 404s without DEBUG and refuses non-staff; bad input is a 4xx JSON body; a call
is known only to the session that placed it (its state lives there, keyed by CallSid).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import phonenumbers
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from channels_voice.simulator import DEFAULT_NUMBER, Call, CallState, HttpTransport
from conversations.console.permissions import supervisor_required
from talia.api import error_body

SESSION_KEY = "dev_phone_calls"
MAX_CALLS_KEPT = 5
MAX_TEXT = 1000


def _debug_only() -> None:
    if not settings.DEBUG:
        raise Http404


def _error(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, fields), status=status)


def _body(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    try:
        data: Any = json.loads(request.body or b"{}")
    except ValueError:
        return _error(400, "malformed_json", "The body must be JSON.")
    if not isinstance(data, dict):
        return _error(400, "malformed_json", "The body must be a JSON object.")
    return data


def _transport(request: HttpRequest) -> HttpTransport:
    """TalIA as Twilio reaches it: its public base URL when one is configured (as the WhatsApp dev phone
    posts), else this server as the browser reached it."""
    return HttpTransport(base=settings.TALIA_PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/"))


def _calls(request: HttpRequest) -> dict[str, dict[str, Any]]:
    calls = request.session.get(SESSION_KEY)
    return calls if isinstance(calls, dict) else {}


def _keep(request: HttpRequest, call: Call) -> None:
    calls = _calls(request)
    calls[call.state.call_sid] = asdict(call.state)
    # The newest few only: an abandoned tab must not grow the session for ever.
    request.session[SESSION_KEY] = dict(list(calls.items())[-MAX_CALLS_KEPT:])


def _call(request: HttpRequest, data: dict[str, Any]) -> Call | JsonResponse:
    """The session's call named by `call_sid`, or the 4xx answer."""
    call_sid = data.get("call_sid")
    if not isinstance(call_sid, str) or not call_sid:
        return _error(400, "invalid", _("The call is missing."), {"call_sid": "This field is required."})
    state = _calls(request).get(call_sid)
    if state is None:
        return _error(404, "unknown_call", _("This call was not placed from this dev phone."))
    return Call(_transport(request), settings.TALIA_TWILIO_AUTH_TOKEN, CallState(**state))


def _answer(call: Call, turn_json: dict[str, Any]) -> JsonResponse:
    if turn_json["error"]:
        return JsonResponse(
            {**error_body("webhook_failed", turn_json["error"]), **turn_json, "call_sid": call.state.call_sid},
            status=502,
        )
    return JsonResponse({**turn_json, "call_sid": call.state.call_sid})


@supervisor_required
@require_GET
def page(request: HttpRequest) -> HttpResponse:
    _debug_only()
    return render(
        request,
        "channels_voice/dev_call.html",
        {"number": DEFAULT_NUMBER, "configured": bool(settings.TALIA_TWILIO_AUTH_TOKEN)},
    )


@supervisor_required
@require_POST
def start(request: HttpRequest) -> JsonResponse:
    """POST {number}: a signed inbound call from `number` (E.164); TalIA's greeting."""
    _debug_only()
    data = _body(request)
    if isinstance(data, JsonResponse):
        return data
    number = str(data.get("number") or "").strip()
    try:
        valid = phonenumbers.is_possible_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        return _error(
            400, "invalid", _("A phone number in international format (+34...) is required."), {"number": "Invalid."}
        )
    if not settings.TALIA_TWILIO_AUTH_TOKEN:
        return _error(409, "not_configured", "TALIA_TWILIO_AUTH_TOKEN is needed to sign the webhooks.")
    call = Call(_transport(request), settings.TALIA_TWILIO_AUTH_TOKEN, CallState.new(number))
    turn = call.dial()
    _keep(request, call)
    return _answer(call, turn.as_json())


@supervisor_required
@require_POST
def say(request: HttpRequest) -> JsonResponse:
    """POST {call_sid, text}: what the caller says; TalIA's spoken answer."""
    _debug_only()
    data = _body(request)
    if isinstance(data, JsonResponse):
        return data
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        return _error(
            400, "invalid", _("Say something (at most 1000 characters)."), {"text": "Required, 1 to 1000 characters."}
        )
    call = _call(request, data)
    if isinstance(call, JsonResponse):
        return call
    if not call.listening:
        return _error(409, "not_listening", _("TalIA is not listening: the call has ended."))
    turn = call.say(text.strip())
    _keep(request, call)
    return _answer(call, turn.as_json())


@supervisor_required
@require_POST
def hangup(request: HttpRequest) -> JsonResponse:
    """POST {call_sid}: the caller hangs up; the signed `completed` status callback."""
    _debug_only()
    data = _body(request)
    if isinstance(data, JsonResponse):
        return data
    call = _call(request, data)
    if isinstance(call, JsonResponse):
        return call
    if call.state.ended:
        return _error(409, "ended", _("This call has already ended."))
    status, body = call.hang_up()
    _keep(request, call)
    if status != 200:
        return _error(502, "webhook_failed", f"HTTP {status} from the status callback: {body[:300]}")
    return JsonResponse({"call_sid": call.state.call_sid, "status": json.loads(body).get("status", "")})
