"""Conversation summaries: the brief an agent reads before answering, and the record kept on close.

With a model engine the model writes them (a structured-output call, in a Celery task, never inside a
transaction); with the offline engine, or when the model fails, they are extractive: what the contact
asked first and last, the numbers, and the most frequent meaningful words as topics.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from conversations import events, realtime
from conversations.assistant import prompts
from conversations.assistant.base import ProviderError, Summary
from conversations.assistant.engines import get_engine
from conversations.leadfields import lead_details
from conversations.models import (
    Conversation,
    ConversationSummary,
    Event,
    HandoffRequest,
    Message,
    Sender,
)
from talia.text import shorten

logger = logging.getLogger("talia.assistant")

EXTRACTIVE = "extractive"

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
    return shorten(text, limit)


def topics_of(texts: list[str]) -> list[str]:
    counts = Counter(word for text in texts for word in WORD.findall(text.lower()) if word not in STOPWORDS)
    return [word for word, _ in counts.most_common(MAX_TOPICS)]


def extractive_summary(messages: list[Message], language: str) -> Summary:
    """What the contact asked first and last, the counts, and the most frequent words, in `language`."""
    said = [m.text for m in messages if m.sender == Sender.CONTACT and m.text.strip()]
    with translation.override(language):
        if not said:
            return Summary(_("The contact did not write anything."), [], EXTRACTIVE)
        parts = [_("First asked: “%(text)s”.") % {"text": _clip(said[0])}]
        if len(said) > 1:
            parts.append(_("Last said: “%(text)s”.") % {"text": _clip(said[-1])})
        replies = sum(1 for m in messages if m.sender in (Sender.ASSISTANT, Sender.AGENT))
        parts.append(
            ngettext(
                "%(count)d message from the contact, %(replies)d answer(s).",
                "%(count)d messages from the contact, %(replies)d answer(s).",
                len(said),
            )
            % {"count": len(said), "replies": replies}
        )
    return Summary(" ".join(parts), topics_of(said), EXTRACTIVE)


def written_summary(messages: list[Message]) -> Summary:
    """The configured engine's summary in the team's language; extractive if the model fails."""
    language = settings.LANGUAGE_CODE
    engine = get_engine()
    if not engine.writes_structured:
        return extractive_summary(messages, language)
    try:
        raw = engine.structured(
            prompts.summary_instructions(language),
            prompts.transcript(messages),
            "conversation_summary",
            prompts.SUMMARY_SCHEMA,
        )
        return prompts.parse_summary(raw, engine=engine.name)
    except ProviderError as exc:
        logger.warning("The %s engine could not summarise (%s); using the extractive summary", engine.name, exc)
        return extractive_summary(messages, language)


def handoff_brief(conversation: Conversation) -> dict[str, object]:
    """What an agent needs before answering: why the handoff, the conversation so far, the lead fields.

    The summary is the one the model wrote for the handoff when there is one, else extractive (built now).
    """
    handoff = conversation.handoff_requests.order_by("-created").first()
    if handoff is not None and handoff.brief_summary:
        summary = Summary(handoff.brief_summary, list(handoff.brief_topics), "model")
    else:
        summary = extractive_summary(list(conversation.messages.order_by("seq")), translation.get_language())
    contact = conversation.contact
    return {
        "reason": handoff.reason if handoff else "",
        "requested_by": handoff.get_requested_by_display() if handoff else "",
        "summary": summary.text,
        "topics": summary.topics,
        "written_by_model": summary.engine != EXTRACTIVE,
        "lead": lead_details(contact),
    }


def write_handoff_brief(handoff_id: str) -> HandoffRequest | None:
    """Have the model engine sum up the conversation for the agent about to take it (model engines only).

    Runs in a Celery task after the handoff is stored; agents with the conversation open get `brief.ready`.
    """
    handoff = HandoffRequest.objects.select_related("conversation").filter(pk=handoff_id).first()
    if handoff is None or handoff.brief_summary:
        return handoff
    conversation = handoff.conversation
    messages = list(conversation.messages.filter(created__lte=handoff.created).order_by("seq"))
    summary = written_summary(messages)
    if summary.engine == EXTRACTIVE:
        return handoff  # the model failed; the page builds the extractive brief itself
    HandoffRequest.objects.filter(pk=handoff.pk).update(brief_summary=summary.text, brief_topics=summary.topics)
    handoff.brief_summary, handoff.brief_topics = summary.text, summary.topics
    realtime.publish(
        [realtime.staff_group(conversation.pk), realtime.MONITOR_GROUP],
        realtime.conversation_changed("brief.ready", conversation),
    )
    return handoff


def store_summary(conversation_id: str) -> ConversationSummary | None:
    """Write the ConversationSummary of a closed conversation (once) and tell the monitor."""
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None or conversation.is_open:
        return None
    if hasattr(conversation, "summary"):
        return conversation.summary  # a redelivered task: no second model call
    messages = list(conversation.messages.order_by("seq"))
    summary = written_summary(messages)
    closed = (
        Event.objects.filter(conversation=conversation, name=events.CONVERSATION_CLOSED.name)
        .order_by("-created")
        .first()
    )
    ended_by = (closed.payload.get("ended_by") if closed else "") or ConversationSummary.EndedBy.SYSTEM
    if ended_by not in ConversationSummary.EndedBy.values:
        ended_by = ConversationSummary.EndedBy.SYSTEM
    with transaction.atomic():
        record, created = ConversationSummary.objects.get_or_create(
            conversation=conversation,
            defaults={
                "summary": summary.text,
                "topics": summary.topics,
                "engine": summary.engine,
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
