"""Twilio's Voice webhooks: the inbound call, each speech turn (gather), the reply wait, call statuses,
recording statuses; and the staff-only playback of a recording.

All are form-encoded POSTs signed with X-Twilio-Signature (talia.twilio.refused: missing or forged →
403 JSON, nothing stored). The turn views are async: while the assistant's turn runs in Celery they wait
on the conversation's group (conversations.waiting) without holding a thread, and never past
TALIA_VOICE_TURN_WAIT_S, so no Twilio request outlives its 15 s budget: a reply not ready by then is a
holding phrase and a `<Redirect>` to the wait view, which waits again.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from channels_voice import recordings, services, tokens, twiml
from channels_voice.models import CallMode, VoiceCall, VoiceRecording
from conversations.console.permissions import is_supervisor
from conversations.inbox import InboxError
from conversations.models import conversation_group
from conversations.waiting import wait_for_reply
from talia import twilio
from talia.twilio import error

logger = logging.getLogger("talia.voice")

# Holding phrases before TalIA gives up on a slow reply and asks the caller to say it again.
MAX_WAITS = 3
MAX_QUERY_NUMBER = 10**9
STREAM_PATH = "/api/voice/stream"


class BadQuery(ValueError):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(str(fields))
        self.fields = fields


def _numbers(request: HttpRequest, *names: str) -> dict[str, int]:
    """The whole numbers the TwiML put in the action's query string (0 when absent)."""
    values: dict[str, int] = {}
    problems: dict[str, str] = {}
    for name in names:
        raw = request.GET.get(name, "0")
        if not raw.isdigit() or int(raw) > MAX_QUERY_NUMBER:
            problems[name] = "Must be a whole number."
        else:
            values[name] = int(raw)
    if problems:
        raise BadQuery(problems)
    return values


def _invalid(fields: dict[str, str]) -> JsonResponse:
    return error(400, "invalid", "This is not a Twilio Voice webhook TalIA can use.", fields)


def _unknown(call_sid: str) -> JsonResponse:
    return error(404, "unknown_call", f"No call {call_sid!r} is known: its inbound webhook never reached TalIA.")


@csrf_exempt
@require_POST
def inbound(request: HttpRequest) -> HttpResponse:
    """POST /api/voice/inbound: a call arrives; the AI disclosure, then the first Gather (gather mode) or
    the media stream to the realtime bridge (TALIA_VOICE_MODE=realtime)."""
    if (refusal := twilio.refused(request, "Voice")) is not None:
        return refusal
    realtime = settings.TALIA_VOICE_MODE == CallMode.REALTIME
    try:
        started = services.start_call(request.POST, mode=CallMode.REALTIME if realtime else CallMode.GATHER)
    except services.InvalidWebhook as invalid:
        return _invalid(invalid.fields)
    except InboxError as refused_by_inbox:
        return _invalid({"From": str(refused_by_inbox)})
    callback = _public(request, recordings.CALLBACK_PATH) if recordings.active() else None
    if started.call.mode == CallMode.REALTIME:
        return twiml.render(_stream_greeting(request, started, callback))
    return twiml.render(twiml.greeting(started.call.locale, started.last_seq, recording_callback=callback))


def _stream_greeting(request: HttpRequest, started: services.Started, recording_callback: str | None) -> Any:
    """The disclosure, then the call's audio bridged to WS /api/voice/stream (wss behind https)."""
    base = settings.TALIA_PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")
    call = started.call
    conversation_id = str(started.conversation.pk)
    parameters = {
        "call_sid": call.call_sid,
        "conversation_id": conversation_id,
        "token": tokens.issue(call.call_sid, conversation_id),
    }
    stream_url = re.sub(r"^http", "ws", base) + STREAM_PATH
    return twiml.stream_greeting(call.locale, stream_url, parameters, started.last_seq, recording_callback)


@csrf_exempt
@require_POST
async def gather(request: HttpRequest) -> HttpResponse:
    """POST /api/voice/gather?after=&silences=: what the caller said (SpeechResult), or silence."""
    found = await _call_turn(request, "after", "silences")
    if isinstance(found, HttpResponse):
        return found
    call, query = found
    speech = (request.POST.get("SpeechResult") or "").strip()
    if not speech:
        return twiml.render(twiml.silence(call.locale, query["after"], query["silences"] + 1))
    if (asked := services.requested_locale(speech)) and asked != call.locale:
        await sync_to_async(services.switch_locale)(call, asked)
    try:
        heard = await sync_to_async(services.hear)(
            call, speech, query["after"], (request.POST.get("Confidence") or "").strip()
        )
    except services.InvalidWebhook as invalid:
        return _invalid(invalid.fields)
    except InboxError as refused_by_inbox:
        return _invalid({"SpeechResult": str(refused_by_inbox)})
    if heard.handed_over:
        return twiml.render(twiml.handed_over(call.locale))
    return await _answer(call, heard.conversation.pk, heard.message.seq, waits=0)


@csrf_exempt
@require_POST
async def wait(request: HttpRequest) -> HttpResponse:
    """POST /api/voice/wait?after=&waits=: wait again for the reply to the caller's message `after`."""
    found = await _call_turn(request, "after", "waits")
    if isinstance(found, HttpResponse):
        return found
    call, query = found
    return await _answer(call, call.conversation_id, query["after"], waits=query["waits"])


async def _call_turn(request: HttpRequest, *numbers: str) -> tuple[VoiceCall, dict[str, int]] | HttpResponse:
    """A turn of a known call: its VoiceCall and the numbers the TwiML put in the action's query string,
    or the 4xx answer (unsigned, malformed, or a CallSid TalIA never saw)."""
    if (refusal := twilio.refused(request, "Voice")) is not None:
        return refusal
    try:
        query = _numbers(request, *numbers)
        call = await sync_to_async(services.find_call)(request.POST)
    except BadQuery as bad:
        return _invalid(bad.fields)
    except services.InvalidWebhook as invalid:
        return _invalid(invalid.fields)
    except services.UnknownCall as unknown:
        return _unknown(str(unknown))
    return call, query


async def _answer(call: VoiceCall, conversation_id: UUID | Any, after: int, *, waits: int) -> HttpResponse:
    """Speak the reply to message `after` and listen again; or hold and redirect; or hand over."""
    reply = await wait_for_reply(
        str(conversation_id), conversation_group(conversation_id), after, settings.TALIA_VOICE_TURN_WAIT_S
    )
    handed_over = await sync_to_async(services.handed_over)(conversation_id)
    if handed_over:
        return twiml.render(twiml.handed_over(call.locale, reply["text"] if reply else ""))
    if reply is None:
        if waits + 1 >= MAX_WAITS:
            logger.warning("No reply on call %s after %s waits; asking the caller again", call.call_sid, waits + 1)
            return twiml.render(twiml.too_slow(call.locale, after))
        return twiml.render(twiml.hold(call.locale, after, waits + 1))
    return twiml.render(twiml.reply(call.locale, reply["text"], reply["seq"]))


@csrf_exempt
@require_POST
def status(request: HttpRequest) -> HttpResponse:
    """POST /api/voice/status: call progress, applied in SequenceNumber order (older ones ignored)."""
    if (refusal := twilio.refused(request, "Voice")) is not None:
        return refusal
    try:
        callback = services.parse_status(request.POST)
        result = services.apply_status(callback)
    except services.InvalidWebhook as invalid:
        return _invalid(invalid.fields)
    except services.UnknownCall as unknown:
        return _unknown(str(unknown))
    return JsonResponse({"status": result})


def _public(request: HttpRequest, path: str) -> str:
    """The absolute URL Twilio reaches `path` at (TALIA_PUBLIC_BASE_URL behind a proxy)."""
    base = settings.TALIA_PUBLIC_BASE_URL
    return f"{base}{path}" if base else request.build_absolute_uri(path)


@csrf_exempt
@require_POST
def recording(request: HttpRequest) -> HttpResponse:
    """POST /api/voice/recording: a recording's status; `completed` queues its encrypted download."""
    if (refusal := twilio.refused(request, "Voice")) is not None:
        return refusal
    try:
        callback = recordings.parse_callback(request.POST)
        result = recordings.apply_callback(callback)
    except services.InvalidWebhook as invalid:
        return _invalid(invalid.fields)
    except services.UnknownCall as unknown:
        return _unknown(str(unknown))
    return JsonResponse({"status": result})


@login_required
@require_GET
def play_recording(request: HttpRequest, recording_sid: str) -> HttpResponse:
    """GET /voice/recordings/<sid>: the recording's audio, decrypted in memory, for staff only."""
    if not is_supervisor(request.user):
        return error(403, "forbidden", "Only staff may play call recordings.")
    stored = get_object_or_404(VoiceRecording, recording_sid=recording_sid)
    try:
        audio = recordings.audio(stored)
    except recordings.RecordingError as problem:
        logger.warning("Recording %s could not be played: %s", recording_sid, problem)
        return error(409, "not_playable", str(problem))
    logger.info("Recording %s played by %s", recording_sid, request.user.get_username())
    content_type = stored.content_type if stored.content_type.startswith("audio/") else "audio/wav"
    response = HttpResponse(audio, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = f'inline; filename="{stored.recording_sid}.wav"'
    return response
