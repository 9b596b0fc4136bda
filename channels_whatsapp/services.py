"""WhatsApp over Twilio: what webhooks bring in, what statuses say, and how replies go out.

Two separate paths into the core, as Twilio has two callbacks:
- inbound messages (`receive_webhook`): the posted form, already signature-checked by the view, turned
  into `conversations.inbox.receive(...)` keyed by MessageSid, so a retried or concurrent duplicate is
  stored and answered once (the database's unique (channel, external_id) constraint decides). Media are
  recorded as attachments at once and downloaded by a Celery task after commit.
- delivery statuses (`record_callback`): through `conversations.delivery.record_status`, forward only.
And one way out: `deliver(message)`, the channel's deliverer, run by the core's delivery task.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from channels_whatsapp import twilio_client
from conversations import delivery, inbox
from conversations.models import ContactIdentity, Message, Sender
from conversations.registry import split_words
from talia import enqueue

logger = logging.getLogger("talia.whatsapp")

CHANNEL = "whatsapp"
# WhatsApp's free-form window, counted from the contact's last message.
REPLY_WINDOW = timedelta(hours=24)
# The longest body Twilio accepts for one WhatsApp message.
MAX_LENGTH = 1600
MAX_MEDIA = 10
MEDIA_TASK = "channels_whatsapp.tasks.download_media"
STATUS_TASK = "channels_whatsapp.tasks.record_status_later"

SID = re.compile(r"^[A-Z]{2}[0-9a-zA-Z]{10,62}$")
WA_ID = re.compile(r"^\d{6,20}$")

# Twilio's MessageStatus -> ours. `sending` and the Messaging Service's `accepted`/`scheduled` mean the
# message is still with Twilio: queued. `canceled` (a scheduled message withdrawn) never left: failed.
STATUSES = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "partially_delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "undelivered",
    "canceled": "failed",
}


# --- Splitting long replies (ChannelSpec.split) --------------------------------------------------------

SENTENCE_END = re.compile(r"[.!?…]+[\"'»”)\]]*\s+|\n+")


def split_sentences(text: str, max_length: int) -> list[str]:
    """Parts of at most `max_length` characters, in order, cut after a sentence (or a line) when one
    fits, else between words."""
    text = text.strip()
    if len(text) <= max_length:
        return [text]
    sentences, start = [], 0
    for match in SENTENCE_END.finditer(text):
        sentences.append(text[start : match.end()])
        start = match.end()
    sentences.append(text[start:])
    parts: list[str] = []
    current = ""
    for sentence in sentences:
        if len(current) + len(sentence.rstrip()) <= max_length:
            current += sentence
            continue
        if current.strip():
            parts.append(current.strip())
        current = ""
        if len(sentence.rstrip()) > max_length:
            *whole, current = split_words(sentence.strip(), max_length)
            parts.extend(whole)
            current += " "
        else:
            current = sentence
    if current.strip():
        parts.append(current.strip())
    return parts


# --- Inbound messages ----------------------------------------------------------------------------------


class InvalidWebhook(ValueError):
    """The posted form is not a WhatsApp message TalIA can store; `fields` says what is wrong."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in fields.items()))
        self.fields = fields


@dataclass
class Inbound:
    message_sid: str
    wa_id: str
    text: str
    display_name: str
    content_type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    locale: str | None = None


def parse_inbound(params: Any) -> Inbound:
    """The message in Twilio's form `params` (a QueryDict or dict); raises InvalidWebhook.

    Unknown parameters are allowed (Twilio adds them without notice); the known ones are checked.
    """
    get = params.get
    problems: dict[str, str] = {}
    sid = (get("MessageSid") or get("SmsMessageSid") or "").strip()
    if not SID.match(sid):
        problems["MessageSid"] = "A Twilio message SID (SM… or MM…) is required."
    sender = (get("From") or "").strip()
    wa_id = (get("WaId") or sender.removeprefix("whatsapp:").lstrip("+")).strip()
    if not WA_ID.match(wa_id):
        problems["WaId"] = "The sender's WhatsApp number (digits, or From=whatsapp:+E164) is required."
    text = get("Body") or ""
    if len(text) > 4096:
        problems["Body"] = "At most 4096 characters."
    metadata: dict[str, Any] = {"from": sender, "to": (get("To") or "").strip()}
    content_type = "text"

    attachments = _attachments(params, problems)
    if attachments:
        metadata["attachments"] = attachments
        content_type = "media"
    location = _location(params, problems)
    if location:
        metadata["location"] = location
        content_type = "location"
    if get("ButtonPayload") or get("ButtonText"):
        metadata["button"] = {"text": (get("ButtonText") or "")[:200], "payload": (get("ButtonPayload") or "")[:200]}
        content_type = "button"
        text = text or metadata["button"]["text"]
    if replied := (get("OriginalRepliedMessageSid") or "").strip():
        metadata["in_reply_to"] = {"sid": replied[:64], "sender": (get("OriginalRepliedMessageSender") or "")[:64]}
    for flag in ("Forwarded", "FrequentlyForwarded"):
        if (get(flag) or "").lower() == "true":
            metadata[flag.lower()] = True
    if not text.strip() and not attachments and not location:
        problems.setdefault("Body", "A message needs a body, media or a location.")
    if problems:
        raise InvalidWebhook(problems)
    if not text.strip() and location:
        text = location.get("label") or location.get("address") or f"{location['latitude']}, {location['longitude']}"
    return Inbound(
        message_sid=sid,
        wa_id=wa_id,
        text=text,
        display_name=(get("ProfileName") or "").strip()[:200],
        content_type=content_type,
        metadata=metadata,
        locale=locale_of(wa_id),
    )


# Twilio does not say which language a contact speaks; their number's country is the best first guess.
SPANISH_REGIONS = frozenset(
    ["ES", "MX", "AR", "CO", "PE", "VE", "CL", "EC", "GT", "CU", "BO", "DO", "HN", "PY", "SV", "NI", "CR", "PA", "UY", "PR", "GQ"]
)  # fmt: skip
ENGLISH_REGIONS = frozenset(
    ["US", "GB", "CA", "AU", "NZ", "IE", "ZA", "JM", "TT", "BS", "BB", "BZ", "GY", "SG", "MT", "GI"]
)


def locale_of(wa_id: str) -> str | None:
    """'es' or 'en' from the country of a WhatsApp number, or None when it says nothing TalIA speaks."""
    try:
        # By the calling code alone: +44 is the UK even for a number WhatsApp knows and the library does not.
        region = phonenumbers.region_code_for_country_code(phonenumbers.parse(f"+{wa_id}").country_code or 0)
    except phonenumbers.NumberParseException:
        return None
    if region in SPANISH_REGIONS:
        return "es"
    if region in ENGLISH_REGIONS:
        return "en"
    return None


def _attachments(params: Any, problems: dict[str, str]) -> list[dict[str, Any]]:
    raw = (params.get("NumMedia") or "0").strip()
    try:
        count = int(raw)
    except ValueError:
        count = -1
    if not 0 <= count <= MAX_MEDIA:
        problems["NumMedia"] = f"A number from 0 to {MAX_MEDIA}."
        return []
    attachments = []
    for index in range(count):
        url = (params.get(f"MediaUrl{index}") or "").strip()
        if not url.startswith(("https://", "http://")) or len(url) > 1000:
            problems[f"MediaUrl{index}"] = "An http(s) URL is required for each of NumMedia."
            continue
        content_type = (params.get(f"MediaContentType{index}") or "application/octet-stream").strip()[:100]
        attachments.append({"url": url, "content_type": content_type})
    return attachments


def _location(params: Any, problems: dict[str, str]) -> dict[str, Any] | None:
    lat, lng = params.get("Latitude"), params.get("Longitude")
    if lat is None and lng is None:
        return None
    try:
        latitude, longitude = float(lat), float(lng)
    except (TypeError, ValueError):
        latitude = longitude = float("nan")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        problems["Latitude"] = "Latitude and Longitude must both be given, in degrees."
        return None
    location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    for name in ("Address", "Label"):
        if value := (params.get(name) or "").strip():
            location[name.lower()] = value[:300]
    return location


def receive_webhook(params: Any) -> inbox.Received:
    """Store the WhatsApp message Twilio posted (once per MessageSid) and queue its media download."""
    message = parse_inbound(params)
    received = inbox.receive(
        CHANNEL,
        message.wa_id,
        message.text,
        message.metadata,
        message.message_sid,
        content_type=message.content_type,
        locale=message.locale,
        display_name=message.display_name,
    )
    if not received.duplicate and message.metadata.get("attachments"):
        enqueue.after_commit(MEDIA_TASK, str(received.message.pk), what="WhatsApp media download")
    return received


def download_media(message_id: str) -> int:
    """Download the attachments of an inbound message not yet stored; returns how many were stored.

    Raises twilio_client.TwilioError (the task retries the temporary ones).
    """
    message = Message.objects.filter(pk=message_id, channel=CHANNEL).first()
    if message is None:
        return 0
    stored = 0
    for index, attachment in enumerate(message.metadata.get("attachments") or []):
        if attachment.get("stored"):
            continue
        body, content_type = twilio_client.fetch(attachment["url"])
        extension = (content_type.split("/")[-1].split(";")[0] or "bin")[:10]
        name = default_storage.save(
            f"whatsapp/{message.conversation_id}/{message.pk}-{index}.{extension}", ContentFile(body)
        )
        with transaction.atomic():
            locked = Message.objects.select_for_update().get(pk=message.pk)
            attachments = locked.metadata.get("attachments") or []
            attachments[index] = {**attachments[index], "stored": name, "size": len(body)}
            locked.metadata = {**locked.metadata, "attachments": attachments}
            locked.save(update_fields=["metadata"])
        stored += 1
    return stored


# --- Delivery statuses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCallback:
    message_sid: str
    status: str
    error_code: str
    error_message: str


def parse_status(params: Any) -> StatusCallback | None:
    """The status Twilio reports, in our terms; None for one TalIA does not track. Raises InvalidWebhook."""
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    raw = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    problems = {}
    if not SID.match(sid):
        problems["MessageSid"] = "A Twilio message SID is required."
    if not raw:
        problems["MessageStatus"] = "A message status is required."
    if problems:
        raise InvalidWebhook(problems)
    status = STATUSES.get(raw)
    if status is None:
        return None
    code = (params.get("ErrorCode") or "").strip()[:10]
    if code == "0":
        code = ""
    meaning = twilio_client.ERROR_MEANINGS.get(code) or (params.get("ErrorMessage") or "").strip()[:300]
    if raw == "canceled" and not meaning:
        meaning = "Canceled before it was sent."
    return StatusCallback(sid, status, code, meaning)


def record_callback(callback: StatusCallback) -> delivery.Recorded:
    """Apply a status callback; one for a message whose id is not stored yet is applied by a task later."""
    recorded = delivery.record_status(
        CHANNEL, callback.message_sid, callback.status, callback.error_code or None, callback.error_message
    )
    if recorded == "unknown":
        # The callback can beat the deliverer's own write of the sid: try again shortly.
        enqueue.after_commit(
            STATUS_TASK,
            callback.message_sid,
            callback.status,
            callback.error_code,
            callback.error_message,
            what="WhatsApp status",
        )
    return recorded


# --- Sending (the channel's deliverer) -----------------------------------------------------------------


def status_callback_url() -> str | None:
    """Where Twilio reports statuses: TALIA_PUBLIC_BASE_URL + the status path; None without a public URL."""
    base = settings.TALIA_PUBLIC_BASE_URL
    return f"{base}{reverse('whatsapp:status')}" if base else None


def recipient(message: Message) -> str:
    wa_id = (
        ContactIdentity.objects.filter(contact_id=message.conversation.contact_id, channel=CHANNEL)
        .values_list("value", flat=True)
        .first()
    )
    if not wa_id:
        raise twilio_client.TwilioError("The contact has no WhatsApp number.", permanent=True)
    return f"whatsapp:+{wa_id.lstrip('+')}"


def sender_fields() -> dict[str, str]:
    if settings.TALIA_TWILIO_MESSAGING_SERVICE_SID:
        return {"messaging_service_sid": settings.TALIA_TWILIO_MESSAGING_SERVICE_SID}
    sender = settings.TALIA_TWILIO_WHATSAPP_FROM
    if not sender:
        raise twilio_client.TwilioError(
            "No WhatsApp sender: set TALIA_TWILIO_WHATSAPP_FROM or TALIA_TWILIO_MESSAGING_SERVICE_SID.",
            permanent=True,
        )
    return {"from_": sender if sender.startswith("whatsapp:") else f"whatsapp:{sender}"}


def outside_window_reason(window: delivery.ReplyWindow) -> str:
    if window.last_contact_message_at is None:
        return "Held: outside WhatsApp's 24-hour window, the contact has not written yet."
    when = timezone.localtime(window.last_contact_message_at).strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"Held: outside WhatsApp's 24-hour window; the contact last wrote at {when}. "
        "It can be sent when they write again, or as an approved template (TALIA_WHATSAPP_TEMPLATE_SID)."
    )


def content_fields(message: Message) -> dict[str, str]:
    """Free-form text inside the window; outside it an agent's text as the approved template, else held."""
    window = delivery.reply_window(message.conversation)
    if window is None or window.open:
        return {"body": message.text}
    if message.sender == Sender.AGENT and settings.TALIA_WHATSAPP_TEMPLATE_SID:
        return {
            "content_sid": settings.TALIA_WHATSAPP_TEMPLATE_SID,
            "content_variables": json.dumps({"1": message.text}, ensure_ascii=False),
        }
    raise twilio_client.TwilioError(outside_window_reason(window), permanent=True, code="63016")


def deliver(message: Message) -> str:
    """Send one stored outbound message through Twilio; returns its MessageSid.

    Raises TwilioError (a DeliveryError): temporary for 429, 5xx and network trouble (the core retries
    with backoff), permanent for what a retry cannot fix (recorded on the message with its meaning).
    """
    fields = {**sender_fields(), "to": recipient(message), **content_fields(message)}
    if callback := status_callback_url():
        fields["status_callback"] = callback
    client = twilio_client.client()
    try:
        sent = client.messages.create(**fields)
    except Exception as exc:
        raise twilio_client.as_error(exc) from exc
    if not sent.sid:
        raise twilio_client.TwilioError("Twilio's answer had no message sid.")
    logger.info("WhatsApp message %s sent as %s", message.pk, sent.sid)
    return str(sent.sid)
