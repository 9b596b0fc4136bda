"""Files in web chat messages: the visitor's uploads and their download links.

The widget shows a file as an <img> or a link, which cannot carry the session id in a header: each
attachment in a message the widget receives (history, socket) gets a `url`, a download path signed for
that message's file and valid TALIA_ATTACHMENT_URL_TTL_S. Only the visitor's own history and socket hand
those out, so holding one proves the session; a REST client may instead present its session id.
"""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from channels_web import services
from conversations import attachments, inbox
from conversations.models import Channel, ConversationStatus, Message, Sender
from conversations.realtime import Attachment, MessagePayload

SALT = "talia.webchat.attachment"
FOLDER = "webchat"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def sign(message_id: str, index: int) -> str:
    """The signature part (timestamp:signature) of message `message_id`'s file `index`."""
    value = f"{message_id}.{index}"
    return _signer().sign(value)[len(value) + 1 :]


def signature_ok(message_id: UUID | str, index: int, signature: str) -> bool:
    value = f"{message_id}.{index}"
    try:
        return _signer().unsign(f"{value}:{signature}", max_age=settings.TALIA_ATTACHMENT_URL_TTL_S) == value
    except signing.BadSignature:  # expired links too (SignatureExpired is one)
        return False


def with_urls(payload: MessagePayload) -> MessagePayload:
    """`payload` with a signed download path on each of its held files (what the widget is sent)."""
    if not payload.get("attachments"):
        return payload
    signed: list[Attachment] = []
    for item in payload.get("attachments", []):
        copy = Attachment(**item)
        if copy["stored"]:
            path = reverse("webchat:attachment", args=[payload["id"], copy["index"]])
            copy["url"] = f"{path}?t={sign(payload['id'], copy['index'])}"
        signed.append(copy)
    return {**payload, "attachments": signed}


def event_with_urls(event: dict[str, Any]) -> dict[str, Any]:
    """A `message.new` envelope with signed download paths (socket pushes and catch-ups)."""
    message = event.get("message")
    return {**event, "message": with_urls(message)} if isinstance(message, dict) else event  # type: ignore[arg-type]


def post_attachment(
    visitor: services.Visitor, file: Any, caption: str = "", client_message_id: str = ""
) -> inbox.Received:
    """The visitor's file (and optional caption) as their next message, through the inbox like any other.

    Raises attachments.AttachmentError for a file TalIA refuses. A retry with the same
    `client_message_id` returns the message stored the first time (its file is not stored again).
    With a caption the assistant answers it as usual; a file alone gets a short acknowledgement from
    the assistant (no engine reads files), and is for the team to look at.
    """
    session = services.open_session(visitor)
    external_id = f"{visitor.session_id}:{client_message_id}" if client_message_id else ""
    if external_id:
        existing = (
            Message.objects.select_related("conversation__contact")
            .filter(channel=Channel.WEB, external_id=external_id)
            .first()
        )
        if existing is not None:
            return inbox.Received(existing, existing.conversation, existing.conversation.contact, duplicate=True)
    upload = attachments.check_upload(file)
    entry = attachments.store_upload(upload, FOLDER)
    caption = caption.strip()
    try:
        received = inbox.receive(
            Channel.WEB,
            visitor.session_id,
            caption,
            {**visitor.metadata, "attachments": [entry]},
            external_id,
            content_type="media",
            locale=visitor.locale,
            contact=session.contact,
            assistant_turn=bool(caption),
        )
    except Exception:
        attachments.discard([entry])
        raise
    if received.duplicate:  # a concurrent retry stored it first
        attachments.discard([entry])
        return received
    if not caption and received.conversation.status == ConversationStatus.BOT:
        _acknowledge(received)
    return received


def _acknowledge(received: inbox.Received) -> None:
    with translation.override(received.contact.locale):
        text = _("Thank you, we have received your file. It is kept with this conversation for the team to see.")
        # Closed a moment ago: nobody to tell.
        with contextlib.suppress(inbox.ConversationClosedError):
            inbox.send(received.conversation, text, sender=Sender.ASSISTANT)


def visitor_file(message_id: UUID, index: int, *, session_id: str = "", signature: str = "") -> dict[str, Any] | None:
    """The held file `index` of message `message_id`, if the session or the signature may read it."""
    if signature:
        if not signature_ok(message_id, index, signature):
            return None
        message = Message.objects.filter(pk=message_id, channel=Channel.WEB).first()
    elif session_id:
        message = Message.objects.filter(pk=message_id, conversation__in=services.conversations_of(session_id)).first()
    else:
        return None
    return attachments.stored_entry(message, index) if message is not None else None
