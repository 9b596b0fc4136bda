"""What the realtime bridge (channels_voice.bridge) asks of the database and of Twilio's REST API.

Invariants:
- The Realtime session gets the text assistant's instructions (the locale's prompt and the contact's
  facts) and every tool of the same registry (conversations.registry.tools), in the Realtime API's flat
  function shape; a tool runs with the same rules as in a text turn (consent is checked by the lead
  tools themselves), and a refusal comes back to the model as `{"ok": false, "error": …}`.
- Transcript segments enter the conversation through the inbox only: the caller's through
  `inbox.receive` (external id `<CallSid>/rt/<item id>`, so a segment is stored once, and with
  `assistant_turn=False`: the realtime model answers it, not a text turn), the assistant's through
  `inbox.send`. Each is recorded as a `transcript_segment` event in the same transaction.
- When the bridge cannot go on, the call is never left silent: its TwiML is replaced over Twilio's REST
  API with speech turns (gather mode), or with the hand-over when a person has the conversation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from channels_voice import rest, services, twiml
from channels_voice.events import TRANSCRIPT_SEGMENT
from channels_voice.models import CallMode, VoiceCall
from conversations import events, inbox
from conversations.assistant.base import TurnContext
from conversations.assistant.prompts import instructions
from conversations.assistant.tools import ToolError
from conversations.models import AssistantRun, Conversation, Message, Sender, ToolCall
from conversations.registry import tools
from talia.understanding import guess_locale

logger = logging.getLogger("talia.voice")

CALLER = "caller"
ASSISTANT = "assistant"
TOOL = "tool"  # not a speaker: a tool call, stored in line with the transcript
VOICE_RULES = (
    "\n\n## Phone call\nYou are speaking with the contact on a phone call. Answer in short spoken sentences, "
    "without lists, links, emoji or formatting. What the caller says reaches you as audio; names, emails and "
    "numbers may be misheard, so repeat them back to confirm before you store them."
)
TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"


@dataclass(frozen=True)
class LiveCall:
    call_sid: str
    conversation_id: str
    locale: str
    from_number: str


def live_call(call_sid: str, conversation_id: str) -> LiveCall | None:
    """The call a stream token was issued for, while it is still on in realtime mode; None otherwise."""
    call = VoiceCall.objects.filter(call_sid=call_sid, conversation_id=conversation_id).first()
    if call is None or call.finished or call.mode != CallMode.REALTIME:
        return None
    return LiveCall(call.call_sid, conversation_id, call.locale, call.from_number)


def session_config(call: LiveCall) -> dict[str, Any]:
    """The Realtime `session.update` session: μ-law both ways, server VAD, transcription, the assistant's
    instructions and tools."""
    conversation = Conversation.objects.select_related("contact").get(pk=call.conversation_id)
    context = TurnContext(
        conversation=conversation,
        contact=conversation.contact,
        message=Message(conversation=conversation, text=""),
        locale=call.locale,
        history=[],
        unseen=[],
        previous_response_id="",
        tools=tools.all(),
        last_reply_metadata={},
    )
    return {
        "type": "realtime",
        "model": settings.TALIA_OPENAI_REALTIME_MODEL,
        "output_modalities": ["audio"],
        "instructions": instructions(context) + VOICE_RULES,
        "tools": [
            {"type": "function", "name": tool.name, "description": tool.description, "parameters": tool.parameters}
            for tool in context.tools
        ],
        "tool_choice": "auto",
        "audio": {
            "input": {
                "format": {"type": "audio/pcmu"},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "create_response": True,
                    "interrupt_response": True,
                },
                # No language forced: a caller may switch between Spanish and English mid-call.
                "transcription": {"model": TRANSCRIPTION_MODEL},
            },
            "output": {"format": {"type": "audio/pcmu"}, "voice": settings.TALIA_OPENAI_REALTIME_VOICE},
        },
    }


def run_tool(
    conversation_id: str, name: str, raw_arguments: str, call_id: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one function call of the model, as the text assistant's executor would: its arguments and
    output; never raises. A call id already stored in this conversation (the model's event delivered
    again after a reconnect) gets its stored output back instead of running twice."""
    if call_id and (done := ToolCall.objects.filter(run__conversation_id=conversation_id, call_id=call_id).first()):
        return dict(done.arguments), dict(done.output)
    return _execute(conversation_id, name, raw_arguments)


def record_tool_call(
    conversation_id: str, call_id: str, name: str, arguments: dict[str, Any], output: dict[str, Any]
) -> ToolCall | None:
    """Store a realtime call's tool call, as a text turn's executor does, under a `realtime` AssistantRun
    on the caller message it answered (the bridge stores it after that message, in spoken order)."""
    run = _realtime_run(conversation_id)
    if run is None:
        logger.warning("Realtime tool %s on conversation %s not stored: no caller message", name, conversation_id)
        return None
    tool_call, _ = ToolCall.objects.get_or_create(
        run=run,
        call_id=call_id or f"realtime_{uuid4().hex[:12]}",
        defaults={
            "name": name[:100],
            "arguments": arguments,
            "output": output,
            "status": ToolCall.Status.OK if output.get("ok") else ToolCall.Status.ERROR,
        },
    )
    return tool_call


def _execute(conversation_id: str, name: str, raw_arguments: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        arguments = json.loads(raw_arguments or "{}")
    except json.JSONDecodeError:
        return {}, {"ok": False, "error": "The arguments are not valid JSON."}
    if not isinstance(arguments, dict):
        return {}, {"ok": False, "error": "The arguments must be a JSON object."}
    tool = tools.get(name)
    if tool is None:
        return arguments, {"ok": False, "error": f"There is no tool named {name!r}."}
    conversation = Conversation.objects.select_related("contact").get(pk=conversation_id)
    try:
        output = tool(conversation, **arguments)
    except ToolError as exc:
        return arguments, {"ok": False, "error": str(exc)}
    except TypeError as exc:
        return arguments, {"ok": False, "error": f"Wrong arguments for {tool.name}: {exc}."}
    except Exception:
        logger.exception("Tool %s crashed on a realtime call of conversation %s", name, conversation_id)
        return arguments, {"ok": False, "error": "The tool failed; tell the caller and offer a person."}
    logger.info("Realtime tool %s on conversation %s", name, conversation_id)
    return arguments, {"ok": True, **output}


def _realtime_run(conversation_id: str) -> AssistantRun | None:
    """The run a realtime call's tool calls are stored under: the one of the caller's latest message
    (created, already completed, on first use: the realtime model answers, no text turn runs)."""
    latest = Message.objects.filter(conversation_id=conversation_id, sender=Sender.CONTACT).order_by("-seq").first()
    if latest is None:
        return None
    now = timezone.now()
    run, _ = AssistantRun.objects.get_or_create(
        trigger_message=latest,
        defaults={
            "conversation_id": conversation_id,
            "engine": "realtime",
            "model": settings.TALIA_OPENAI_REALTIME_MODEL[:100],
            "status": AssistantRun.Status.COMPLETED,
            "queued_at": None,
            "started_at": now,
            "finished_at": now,
        },
    )
    return run


def handed_over(conversation_id: str) -> bool:
    return services.handed_over(conversation_id)


def store_segment(call: LiveCall, speaker: str, text: str, item_id: str, metadata: dict[str, Any]) -> Message | None:
    """Store one finished transcript segment as a Message of the call's conversation, with its event."""
    text = text.strip()[: services.MAX_SPEECH_LENGTH]
    if not text:
        return None
    details = {"call_sid": call.call_sid, "item_id": item_id, "realtime": True, **metadata}
    with transaction.atomic():
        if speaker == CALLER:
            received = inbox.receive(
                services.CHANNEL,
                call.from_number,
                text,
                details,
                external_id=f"{call.call_sid}/rt/{item_id}"[: inbox.MAX_EXTERNAL_ID_LENGTH],
                locale=call.locale,
                assistant_turn=False,
            )
            if received.duplicate:
                return received.message
            follow_language(call, text)
            message, conversation = received.message, received.conversation
            if str(conversation.pk) != call.conversation_id:
                VoiceCall.objects.filter(call_sid=call.call_sid).update(conversation=conversation)
        else:
            conversation = Conversation.objects.get(pk=call.conversation_id)
            try:
                message = inbox.send(conversation, text, sender=Sender.ASSISTANT, metadata=details)
            except inbox.ConversationClosedError:
                logger.warning("Call %s: the assistant's words were not stored (conversation closed)", call.call_sid)
                return None
        events.emit(
            TRANSCRIPT_SEGMENT,
            conversation=conversation,
            call_sid=call.call_sid,
            speaker=speaker,
            message_id=str(message.id),
            seq=message.seq,
        )
    return message


def _last_seq(conversation_id: str) -> int:
    return Message.objects.filter(conversation_id=conversation_id).aggregate(last=Max("seq"))["last"] or 0


def fallback_twiml(call: LiveCall) -> str:
    """The call goes on in speech turns (mode gather), in the language the caller speaks now: an apology
    and a <Gather> after the last message."""
    VoiceCall.objects.filter(call_sid=call.call_sid).update(mode=CallMode.GATHER)
    return str(twiml.fallback(_locale_now(call), _last_seq(call.conversation_id)))


def handover_twiml(call: LiveCall) -> str:
    """A person has the conversation: transfer the call (TALIA_VOICE_TRANSFER_NUMBER) or say a person
    calls back, as in gather mode, in the language the caller speaks now."""
    return str(twiml.handed_over(_locale_now(call)))


def _locale_now(call: LiveCall) -> str:
    return VoiceCall.objects.filter(call_sid=call.call_sid).values_list("locale", flat=True).first() or call.locale


def follow_language(call: LiveCall, said: str) -> None:
    """The caller spoke the other language (clearly, by its words): the call's locale follows, so what
    TwiML says from then on (a fallback, a transfer) is in it. The realtime model already answers in it."""
    spoken = guess_locale(said)
    if spoken is not None:
        changed = VoiceCall.objects.filter(call_sid=call.call_sid).exclude(locale=spoken).update(locale=spoken)
        if changed:
            logger.info("Call %s: the caller now speaks %s", call.call_sid, spoken)


def redirect(call: LiveCall, document: str, what: str) -> bool:
    """Replace the live call's TwiML over Twilio's REST API (no database: run it off the database
    thread). False when Twilio could not be told: the stream's closing then runs what follows
    <Connect> in the inbound TwiML (speech turns) instead."""
    try:
        rest.update_call(call.call_sid, document)
    except Exception:
        logger.exception("Call %s: Twilio could not be told about the %s", call.call_sid, what)
        return False
    logger.info("Call %s: TwiML replaced (%s)", call.call_sid, what)
    return True
