"""Conversation summaries: the brief an agent reads before answering, and the record kept on close.

Extractive (no model call): what the contact asked first and last, the most frequent meaningful words as
topics, and the numbers. It runs after commit, in a Celery task, never inside the closing transaction.
"""

from __future__ import annotations

import re
from collections import Counter

from django.db import transaction

from conversations import realtime
from conversations.models import (
    Conversation,
    ConversationSummary,
    Event,
    EventName,
    Message,
    Sender,
)

MAX_TOPICS = 5
STOPWORDS = frozenset(
    [
        "a",
        "al",
        "algo",
        "algun",
        "alguna",
        "como",
        "con",
        "de",
        "del",
        "desde",
        "donde",
        "el",
        "ella",
        "en",
        "es",
        "esta",
        "este",
        "esto",
        "hay",
        "la",
        "las",
        "le",
        "lo",
        "los",
        "me",
        "mi",
        "mis",
        "muy",
        "no",
        "nos",
        "o",
        "para",
        "pero",
        "por",
        "que",
        "quiero",
        "se",
        "si",
        "sin",
        "sobre",
        "soy",
        "su",
        "sus",
        "te",
        "tengo",
        "tu",
        "un",
        "una",
        "uno",
        "y",
        "ya",
        "yo",
        "hola",
        "gracias",
        "vale",
        "the",
        "and",
        "for",
        "with",
        "you",
        "your",
        "are",
        "can",
        "how",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "would",
        "have",
        "has",
        "this",
        "that",
        "from",
        "there",
        "their",
        "they",
        "them",
        "about",
        "i",
        "me",
        "my",
        "we",
        "our",
        "it",
        "its",
        "is",
        "to",
        "of",
        "in",
        "on",
        "at",
        "an",
        "or",
        "be",
        "do",
        "does",
        "hi",
        "hello",
        "thanks",
        "please",
        "want",
        "need",
        "would",
        "like",
    ]
)
WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)


def _clip(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def topics_of(texts: list[str]) -> list[str]:
    counts = Counter(word for text in texts for word in WORD.findall(text.lower()) if word not in STOPWORDS)
    return [word for word, _ in counts.most_common(MAX_TOPICS)]


def summarize(messages: list[Message]) -> tuple[str, list[str]]:
    """(summary, topics) of a conversation's messages, oldest first."""
    said = [m.text for m in messages if m.sender == Sender.CONTACT and m.text.strip()]
    if not said:
        return "The contact did not write anything.", []
    parts = [f"First asked: “{_clip(said[0])}”."]
    if len(said) > 1:
        parts.append(f"Last said: “{_clip(said[-1])}”.")
    replies = sum(1 for m in messages if m.sender in (Sender.ASSISTANT, Sender.AGENT))
    parts.append(f"{len(said)} message(s) from the contact, {replies} answer(s).")
    return " ".join(parts), topics_of(said)


def handoff_brief(conversation: Conversation) -> dict[str, object]:
    """What an agent needs before answering: why the handoff, the conversation so far, the lead fields."""
    handoff = conversation.handoff_requests.order_by("-created").first()
    messages = list(conversation.messages.order_by("seq"))
    summary, topics = summarize(messages)
    contact = conversation.contact
    return {
        "reason": handoff.reason if handoff else "",
        "requested_by": handoff.get_requested_by_display() if handoff else "",
        "summary": summary,
        "topics": topics,
        "lead": {
            "full_name": contact.full_name,
            "email": contact.email,
            "phone": contact.phone,
            "company": contact.company,
        },
    }


def store_summary(conversation_id: str) -> ConversationSummary | None:
    """Write the ConversationSummary of a closed conversation (once) and tell the monitor."""
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None or conversation.is_open:
        return None
    messages = list(conversation.messages.order_by("seq"))
    summary, topics = summarize(messages)
    closed = (
        Event.objects.filter(conversation=conversation, name=EventName.CONVERSATION_CLOSED).order_by("-created").first()
    )
    ended_by = (closed.payload.get("ended_by") if closed else "") or ConversationSummary.EndedBy.SYSTEM
    if ended_by not in ConversationSummary.EndedBy.values:
        ended_by = ConversationSummary.EndedBy.SYSTEM
    with transaction.atomic():
        record, created = ConversationSummary.objects.get_or_create(
            conversation=conversation,
            defaults={
                "summary": summary,
                "topics": topics,
                "message_count": len(messages),
                "started_at": conversation.opened_at,
                "ended_at": conversation.closed_at or conversation.updated,
                "ended_by": ended_by,
            },
        )
        if created:
            realtime.publish(
                [realtime.MONITOR_GROUP],
                realtime.conversation_changed("summary.ready", conversation),
            )
    return record
