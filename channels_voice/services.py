"""The voice channel's service functions: calls start, speech turns enter the inbox, statuses move on.

Invariants:
- A caller is greeted in the language of the number they called (VoiceNumber) when it has one, else in
  their own country's (locale_for).
- One VoiceCall per Twilio CallSid (unique); a retried inbound webhook finds the call it created and
  records `call_started` once.
- What the caller says enters the conversation only through `conversations.inbox.receive`, with an
  external id made of the CallSid and the prompt it answers, so a retried gather webhook stores it once.
- A call's status only moves forward: a status callback is applied when its SequenceNumber is newer than
  the last applied and the call is not finished; an older or repeated one changes nothing.
- A finished call closes its conversation only while the assistant has it: a conversation handed to a
  person stays open in the console queue (the person calls back).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from channels_voice.events import CALL_COMPLETED, CALL_STARTED
from channels_voice.models import FINAL_STATUSES, CallMode, CallStatus, VoiceCall, VoiceNumber
from conversations import events, inbox, state
from conversations.models import Conversation, ConversationStatus, Message, Sender
from talia.understanding import plain_words

logger = logging.getLogger("talia.voice")

CHANNEL = "voice"
MAX_SID_LENGTH = 64
MAX_SPEECH_LENGTH = 4000

# Countries whose callers are greeted in Spanish (ISO 3166 codes, as libphonenumber and Twilio's
# FromCountry name them); everyone else in English.
SPANISH_SPEAKING = frozenset(
    {
        "AR", "BO", "CL", "CO", "CR", "CU", "DO", "EC", "ES", "GQ", "GT", "HN",
        "MX", "NI", "PA", "PE", "PR", "PY", "SV", "UY", "VE",
    }
)  # fmt: skip

# How far along a call is; a status never moves to a lower rank.
RANK = {
    CallStatus.QUEUED: 0,
    CallStatus.INITIATED: 1,
    CallStatus.RINGING: 2,
    CallStatus.IN_PROGRESS: 3,
    **dict.fromkeys(FINAL_STATUSES, 4),
}
HANDED_OVER = (ConversationStatus.QUEUED, ConversationStatus.AGENT)


class InvalidWebhook(ValueError):
    """The webhook lacks what TalIA needs; `fields` says what, per field."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in fields.items()))
        self.fields = fields


class UnknownCall(LookupError):
    pass


def _required(params: Any, name: str, max_length: int = MAX_SID_LENGTH) -> str:
    value = (params.get(name) or "").strip()
    if not value:
        raise InvalidWebhook({name: "This field is required."})
    if len(value) > max_length:
        raise InvalidWebhook({name: f"At most {max_length} characters."})
    return value


def locale_for(number: str, country: str = "") -> str:
    """'es' for a caller from a Spanish-speaking country, 'en' for any other country, else the default.

    The country is the number's (libphonenumber), or Twilio's FromCountry when the number says nothing
    (a SIP or client caller).
    """
    region = ""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        pass
    else:
        # The number's own region; for a number libphonenumber cannot place, its country code's main one.
        region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
            parsed.country_code or 0
        )
    region = region if region and region != "ZZ" else country.strip().upper()
    if not region:
        return settings.TALIA_VOICE_DEFAULT_LOCALE
    return "es" if region in SPANISH_SPEAKING else "en"


def number_locale(called: str) -> str | None:
    """The language configured for the business's number that was called (a VoiceNumber), or None."""
    if not called:
        return None
    return VoiceNumber.objects.filter(number=called.strip()).values_list("locale", flat=True).first()


@dataclass(frozen=True)
class Started:
    call: VoiceCall
    conversation: Conversation
    # The number of the last message of the conversation when the call started (0 for a new one).
    last_seq: int
    created: bool


def start_call(params: Any, mode: str = CallMode.GATHER) -> Started:
    """The VoiceCall of Twilio's inbound call request, created (answered in `mode`) with its conversation
    on the first one."""
    call_sid = _required(params, "CallSid")
    from_number = _required(params, "From")
    to_number = (params.get("To") or "")[:MAX_SID_LENGTH]
    direction = (params.get("Direction") or "inbound")[:32]
    with transaction.atomic():
        call = VoiceCall.objects.select_related("conversation").filter(call_sid=call_sid).first()
        created = False
        if call is not None and call.conversation is not None:
            conversation = call.conversation
        else:
            locale = number_locale(to_number) or locale_for(from_number, params.get("FromCountry") or "")
            _contact, conversation = inbox.ensure_conversation(CHANNEL, from_number, locale=locale)
            if call is None:
                call, created = _create(call_sid, from_number, to_number, direction, locale, conversation, mode)
                conversation = call.conversation or conversation
            else:  # its conversation was deleted: the call goes on in a new one
                VoiceCall.objects.filter(pk=call.pk).update(conversation=conversation)
                call.conversation = conversation
        if created:
            events.emit(
                CALL_STARTED,
                conversation=conversation,
                call_sid=call_sid,
                from_number=from_number,
                to_number=to_number,
                locale=call.locale,
                mode=call.mode,
            )
        last_seq = Message.objects.filter(conversation=conversation).aggregate(last=Max("seq"))["last"] or 0
    return Started(call, conversation, last_seq, created)


def _create(
    call_sid: str,
    from_number: str,
    to_number: str,
    direction: str,
    locale: str,
    conversation: Conversation,
    mode: str = CallMode.GATHER,
) -> tuple[VoiceCall, bool]:
    now = timezone.now()
    try:
        with transaction.atomic():
            call = VoiceCall.objects.create(
                call_sid=call_sid,
                from_number=from_number,
                to_number=to_number,
                direction=direction,
                status=CallStatus.IN_PROGRESS,  # answered by the TwiML we are about to return
                started_at=now,
                answered_at=now,
                mode=mode,
                locale=locale,
                conversation=conversation,
            )
    except IntegrityError:  # a concurrent copy of the same webhook created it first
        return VoiceCall.objects.select_related("conversation").get(call_sid=call_sid), False
    return call, True


def find_call(params: Any) -> VoiceCall:
    call_sid = _required(params, "CallSid")
    call = VoiceCall.objects.select_related("conversation").filter(call_sid=call_sid).first()
    if call is None or call.conversation is None:
        raise UnknownCall(call_sid)
    return call


# What a caller says to change the call's language, whole (folded, without punctuation): the Gather
# listens in one language, so the caller has to ask.
LANGUAGE_REQUESTS = {
    "en": frozenset(
        {
            "english", "in english", "english please", "in english please", "speak english", "speak in english",
            "can we speak english", "can we speak in english", "do you speak english",
            "ingles", "en ingles", "en ingles por favor", "hablame en ingles", "habla en ingles",
            "podemos hablar en ingles", "hablas ingles",
        }
    ),
    "es": frozenset(
        {
            "spanish", "in spanish", "spanish please", "in spanish please", "speak spanish", "speak in spanish",
            "can we speak spanish", "can we speak in spanish", "do you speak spanish",
            "espanol", "en espanol", "en espanol por favor", "hablame en espanol", "habla en espanol",
            "podemos hablar en espanol", "hablas espanol",
        }
    ),
}  # fmt: skip


def requested_locale(speech: str) -> str | None:
    """'en' or 'es' when the caller asks to speak that language ("English, please"), else None."""
    said = plain_words(speech)
    return next((locale for locale, phrases in LANGUAGE_REQUESTS.items() if said in phrases), None)


def switch_locale(call: VoiceCall, locale: str) -> None:
    """Speak and listen in `locale` from now on (the contact's locale follows with the next message)."""
    VoiceCall.objects.filter(pk=call.pk).update(locale=locale)
    call.locale = locale


@dataclass(frozen=True)
class Heard:
    call: VoiceCall
    conversation: Conversation
    message: Message
    # The assistant is silent: a person has (or is about to have) the conversation.
    handed_over: bool


def hear(call: VoiceCall, speech: str, prompt: int, confidence: str = "") -> Heard:
    """Store what the caller said in answer to prompt `prompt` (the seq the prompt followed)."""
    metadata: dict[str, Any] = {"call_sid": call.call_sid}
    if confidence:
        try:
            metadata["confidence"] = round(float(confidence), 3)
        except ValueError:
            raise InvalidWebhook({"Confidence": "Must be a number between 0 and 1."}) from None
    received = inbox.receive(
        CHANNEL,
        call.from_number,
        speech[:MAX_SPEECH_LENGTH],
        metadata,
        external_id=f"{call.call_sid}/{prompt}",
        locale=call.locale,
    )
    conversation = received.conversation
    if call.conversation_id != conversation.pk:
        # The call's conversation was closed meanwhile and this speech opened the next one.
        VoiceCall.objects.filter(pk=call.pk).update(conversation=conversation)
        call.conversation = conversation
    return Heard(call, conversation, received.message, conversation.status in HANDED_OVER)


def handed_over(conversation_id: Any) -> bool:
    current = Conversation.objects.filter(pk=conversation_id).values_list("status", flat=True).first()
    return current in HANDED_OVER


@dataclass(frozen=True)
class StatusCallback:
    call_sid: str
    status: str
    sequence_number: int | None
    duration_s: int | None
    timestamp: datetime | None


def parse_status(params: Any) -> StatusCallback:
    call_sid = _required(params, "CallSid")
    status = _required(params, "CallStatus")
    problems: dict[str, str] = {}
    if status not in CallStatus.values:
        problems["CallStatus"] = f"Unknown call status {status!r}."
    numbers: dict[str, int | None] = {}
    for name in ("SequenceNumber", "CallDuration"):
        raw = (params.get(name) or "").strip()
        numbers[name] = None
        if raw:
            if not raw.isdigit() or len(raw) > 9:
                problems[name] = "Must be a whole number."
            else:
                numbers[name] = int(raw)
    if problems:
        raise InvalidWebhook(problems)
    timestamp = None
    if raw_time := (params.get("Timestamp") or "").strip():
        try:
            timestamp = parsedate_to_datetime(raw_time)
        except (TypeError, ValueError):
            timestamp = None
        if timestamp is not None and timestamp.tzinfo is None:
            timestamp = None
    return StatusCallback(call_sid, status, numbers["SequenceNumber"], numbers["CallDuration"], timestamp)


def apply_status(callback: StatusCallback) -> str:
    """Apply one status callback: 'applied', or 'ignored' when it is older, repeated or after the end."""
    with transaction.atomic():
        call = VoiceCall.objects.select_for_update().filter(call_sid=callback.call_sid).first()
        if call is None:
            raise UnknownCall(callback.call_sid)
        last = call.last_sequence_number
        stale = callback.sequence_number is not None and last is not None and callback.sequence_number <= last
        if call.finished or stale or RANK[CallStatus(callback.status)] < RANK[CallStatus(call.status)]:
            return "ignored"
        now = timezone.now()
        call.status = callback.status
        if callback.sequence_number is not None:
            call.last_sequence_number = callback.sequence_number
        changed = ["status", "last_sequence_number"]
        if callback.status == CallStatus.IN_PROGRESS and call.answered_at is None:
            call.answered_at = callback.timestamp or now
            changed.append("answered_at")
        if callback.status in FINAL_STATUSES:
            call.ended_at = callback.timestamp or now
            if callback.duration_s is not None:
                call.duration_s = callback.duration_s
            elif call.answered_at is not None:
                call.duration_s = max(0, int((call.ended_at - call.answered_at).total_seconds()))
            changed += ["ended_at", "duration_s"]
        call.save(update_fields=changed)
        if callback.status in FINAL_STATUSES:
            _finish(call)
    return "applied"


def _finish(call: VoiceCall) -> None:
    conversation = (
        Conversation.objects.filter(pk=call.conversation_id).first() if call.conversation_id is not None else None
    )
    events.emit(
        CALL_COMPLETED,
        conversation=conversation,
        call_sid=call.call_sid,
        status=call.status,
        duration_s=call.duration_s,
    )
    if conversation is not None and conversation.status == ConversationStatus.BOT:
        state.close_conversation(conversation, ended_by="contact", reason=f"call {call.status}")


SPEAKERS = {Sender.CONTACT: "caller", Sender.ASSISTANT: "assistant", Sender.AGENT: "agent"}


def transcript(call: VoiceCall) -> list[dict[str, Any]]:
    """What was said on the call's conversation, in order: speaker caller|assistant|agent, text, time."""
    if call.conversation_id is None:
        return []
    messages = Message.objects.filter(conversation_id=call.conversation_id, sender__in=list(SPEAKERS)).order_by("seq")
    return [
        {"seq": m.seq, "speaker": SPEAKERS[Sender(m.sender)], "text": m.text, "time": m.created.isoformat()}
        for m in messages.only("seq", "sender", "text", "created")
    ]
