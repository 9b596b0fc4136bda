"""After a conversation: the contact's rating of it (CSAT 1-5 and a comment) and its transcript by email.

Invariants:
- A conversation may be rated once it has ended (closed) or is ending (the contact asked the agent to end
  it): never in the middle of a chat. There is one rating per conversation; a second answer replaces the
  first (the contact changed their mind) and records `csat_submitted` again with `updated=True`.
- `rate_conversation()` is the only writer of ConversationRating, and records its event in the same
  transaction.
- A transcript is rendered in the contact's language from what the contact saw (messages, never internal
  notes), and sent by a Celery task (`conversations.tasks.send_transcript`), never on a request thread.
  Its text part is plain text; its HTML part is built by an autoescaping template, so message text is
  always escaped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext

from conversations import events, profile, realtime
from conversations.models import (
    Conversation,
    ConversationRating,
    ConversationStatus,
    EndChatRequest,
    Message,
    Sender,
)
from talia import enqueue

# How long a sent transcript is remembered, so that a double click (or a retried request) sends it once;
# a new message in the conversation makes a new transcript that may be sent again.
TRANSCRIPT_DEDUPE_S = 15 * 60


class NotEndedError(Exception):
    """The conversation is still going on: it cannot be rated yet."""


def has_ended(conversation: Conversation) -> bool:
    """Closed, or the contact asked the agent to end it and the answer is pending."""
    if conversation.status == ConversationStatus.CLOSED:
        return True
    return conversation.end_requests.filter(status=EndChatRequest.Status.PENDING).exists()


@dataclass(frozen=True)
class Rated:
    rating: ConversationRating
    updated: bool  # True when it replaced an earlier rating


def rate_conversation(conversation: Conversation, score: int, comment: str = "") -> Rated:
    """Store the contact's rating (replacing an earlier one) and record `csat_submitted`.

    Raises ValueError for a score outside 1-5 or a comment too long, NotEndedError while the chat goes on.
    """
    if not ConversationRating.MIN_SCORE <= score <= ConversationRating.MAX_SCORE:
        raise ValueError(f"The score must be between 1 and 5, not {score}.")
    comment = comment.strip()
    if len(comment) > ConversationRating.MAX_COMMENT:
        raise ValueError(f"The comment must be at most {ConversationRating.MAX_COMMENT} characters.")
    with transaction.atomic():
        # The row lock orders a rating against a concurrent reopen or a second submit.
        current = Conversation.objects.select_for_update(of=("self",)).get(pk=conversation.pk)
        if not has_ended(current):
            raise NotEndedError("The conversation has not ended yet.")
        rating, created = ConversationRating.objects.update_or_create(
            conversation=current, defaults={"score": score, "comment": comment}
        )
        events.emit(
            events.CSAT_SUBMITTED, conversation=current, score=score, has_comment=bool(comment), updated=not created
        )
    return Rated(rating, updated=not created)


# --- Transcripts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptLine:
    sender: str
    label: str
    time: datetime
    text: str


@dataclass(frozen=True)
class Transcript:
    subject: str
    text: str
    html: str
    locale: str


def _label(message: Message, assistant_name: str) -> str:
    if message.sender == Sender.CONTACT:
        return gettext("You")
    if message.sender == Sender.AGENT:
        return realtime.agent_name(message.agent) or gettext("Agent")
    if message.sender == Sender.ASSISTANT:
        return assistant_name or gettext("Assistant")
    return gettext("Note")


def render_transcript(conversation: Conversation) -> Transcript:
    """The conversation as an email in its contact's language: a subject, a text part and an HTML part."""
    business = profile.current()
    locale = conversation.contact.locale or settings.LANGUAGE_CODE
    zone = business.zone
    rows = conversation.messages.select_related("agent").exclude(text="").order_by("seq")
    # The template's date filters show times in the active zone: the business's.
    with translation.override(locale), timezone.override(zone):
        lines = [
            TranscriptLine(
                row.sender, _label(row, business.assistant_name), timezone.localtime(row.created, zone), row.text
            )
            for row in rows
        ]
        context = {
            "business_name": business.business_name,
            "lines": lines,
            "opened_at": timezone.localtime(conversation.opened_at, zone),
            "time_zone": str(zone),
            "locale": locale,
        }
        subject = gettext("Your conversation with %(business)s") % {"business": business.business_name}
        text = render_to_string("conversations/email/transcript.txt", context)
        html = render_to_string("conversations/email/transcript.html", context)
    return Transcript(subject=subject, text=text, html=html, locale=locale)


def send_transcript(conversation_id: str, address: str) -> bool:
    """Render and send the transcript to `address`; False when the conversation is gone.

    Raises what the mail backend raises (smtplib.SMTPException, OSError), for the task to retry.
    """
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None:
        return False
    transcript = render_transcript(conversation)
    email = EmailMultiAlternatives(transcript.subject, transcript.text, settings.DEFAULT_FROM_EMAIL, [address])
    email.attach_alternative(transcript.html, "text/html")
    email.extra_headers["Content-Language"] = transcript.locale
    email.send()
    return True


def request_transcript(conversation: Conversation, address: str) -> bool:
    """Queue the transcript of `conversation` for `address` after commit; False when the same transcript
    (same conversation, same last message, same address) was queued in the last TRANSCRIPT_DEDUPE_S."""
    digest = hashlib.sha256(address.lower().encode()).hexdigest()[:32]
    key = f"transcript:{conversation.pk}:{conversation.last_seq}:{digest}"
    if not cache.add(key, 1, TRANSCRIPT_DEDUPE_S):
        return False
    enqueue.after_commit(
        "conversations.tasks.send_transcript",
        str(conversation.pk),
        address,
        what="transcript",
        if_not_queued=lambda: cache.delete(key),  # not queued: let the contact ask again
    )
    return True
