"""Conversation summaries: the brief an agent reads before answering, and the record kept on close.

With a model engine the model writes them (a structured-output call, in a Celery task, never inside a
transaction); with the offline engine, or when the model fails, they are extractive: what the contact
asked first and last, the numbers, and the most frequent meaningful words as topics.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

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
# Words that say nothing about what a conversation is about, in both languages: function words, greetings,
# politeness, the verbs every request uses. Compared without accents ("después" as "despues").
STOPWORDS = frozenset(
    [
        "algo",
        "algun",
        "alguna",
        "alguno",
        "algunos",
        "ahora",
        "alli",
        "aqui",
        "asi",
        "aunque",
        "bien",
        "buenas",
        "bueno",
        "buenos",
        "cada",
        "casi",
        "como",
        "con",
        "contra",
        "cual",
        "cuales",
        "cuando",
        "cuanto",
        "cuanta",
        "cuantos",
        "cuantas",
        "desde",
        "donde",
        "durante",
        "ella",
        "ellas",
        "ello",
        "ellos",
        "entre",
        "esas",
        "ese",
        "eso",
        "esos",
        "esta",
        "estas",
        "este",
        "esto",
        "estos",
        "estan",
        "estar",
        "estoy",
        "esta",
        "estamos",
        "fue",
        "fueron",
        "gracias",
        "hace",
        "hacer",
        "hola",
        "hasta",
        "hay",
        "mucho",
        "muchas",
        "muchos",
        "mucha",
        "nada",
        "nadie",
        "nosotros",
        "nuestra",
        "nuestro",
        "otra",
        "otro",
        "otros",
        "otras",
        "para",
        "pero",
        "poco",
        "poder",
        "podria",
        "podrian",
        "puedo",
        "puede",
        "pueden",
        "porque",
        "pues",
        "quiero",
        "quisiera",
        "queria",
        "quien",
        "quienes",
        "saber",
        "sabes",
        "sean",
        "seria",
        "sido",
        "siempre",
        "sobre",
        "solo",
        "somos",
        "soy",
        "tambien",
        "tanto",
        "tengo",
        "tiene",
        "tienen",
        "tener",
        "todo",
        "todos",
        "toda",
        "todas",
        "usted",
        "ustedes",
        "vale",
        "vamos",
        "vosotros",
        "favor",
        "saludos",
        "dias",
        "tardes",
        "noches",
        "perdona",
        "perdon",
        "necesito",
        "correo",
        "email",
        "mail",
        "telefono",
        "phone",
        "numero",
        "number",
        "movil",
        "llamarme",
        "contacto",
        "haceis",
        "teneis",
        "gustaria",
        "hablar",
        "decir",
        "pregunta",
        "preguntar",
        "consulta",
        "otra",
        "cosa",
        "entonces",
        "claro",
        "mismo",
        "misma",
        "about",
        "after",
        "again",
        "also",
        "because",
        "been",
        "before",
        "being",
        "could",
        "does",
        "doing",
        "done",
        "from",
        "good",
        "have",
        "having",
        "hello",
        "here",
        "into",
        "just",
        "know",
        "like",
        "make",
        "many",
        "more",
        "most",
        "much",
        "need",
        "only",
        "other",
        "please",
        "really",
        "should",
        "some",
        "such",
        "than",
        "thank",
        "thanks",
        "that",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "thing",
        "think",
        "this",
        "those",
        "through",
        "very",
        "want",
        "wanted",
        "what",
        "when",
        "where",
        "which",
        "while",
        "will",
        "with",
        "would",
        "your",
        "yours",
        "hey",
        "okay",
        "question",
    ]
)
WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)
# Addresses and numbers are personal data or noise, never topics.
NOT_WORDS = re.compile(r"\S+@\S+|https?://\S+|www\.\S+|\+?\d[\d\s().-]{5,}\d")


def _clip(text: str, limit: int = 240) -> str:
    return shorten(text, limit)


def _plain(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def topics_of(texts: list[str], names: Iterable[str] = ()) -> list[str]:
    """The most frequent meaningful words of what the contact wrote: no stop words, addresses, numbers, nor
    the words of `names` (the contact's name and company, the assistant's and agents' names)."""
    excluded = STOPWORDS | {_plain(word) for name in names for word in WORD.findall(str(name).lower())}
    counts = Counter(
        word
        for text in texts
        for word in WORD.findall(NOT_WORDS.sub(" ", text).lower())
        if _plain(word) not in excluded
    )
    return [word for word, _ in counts.most_common(MAX_TOPICS)]


def names_in(conversation: Conversation) -> list[str]:
    """Who takes part in a conversation, by name: what topics must not be."""
    contact = conversation.contact
    return [contact.full_name, contact.display_name, contact.company, settings.TALIA_BUSINESS_NAME]


def language_of(conversation: Conversation) -> str:
    """The conversation's language: the contact's (the assistant answers in it); summaries use it too."""
    return conversation.contact.locale or settings.LANGUAGE_CODE


def extractive_summary(messages: list[Message], language: str, names: Iterable[str] = ()) -> Summary:
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
    return Summary(" ".join(parts), topics_of(said, names), EXTRACTIVE)


def written_summary(conversation: Conversation, messages: list[Message]) -> Summary:
    """The configured engine's summary in the conversation's language; extractive if the model fails."""
    language, names = language_of(conversation), names_in(conversation)
    engine = get_engine()
    if not engine.writes_structured:
        return extractive_summary(messages, language, names)
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
        return extractive_summary(messages, language, names)


def handoff_brief(conversation: Conversation) -> dict[str, object]:
    """What an agent needs before answering: why the handoff, the conversation so far, the lead fields.

    The summary is the one the model wrote for the handoff when there is one, else extractive (built now).
    """
    handoff = conversation.handoff_requests.order_by("-created").first()
    if handoff is not None and handoff.brief_summary:
        summary = Summary(handoff.brief_summary, list(handoff.brief_topics), "model")
    else:
        messages = list(conversation.messages.order_by("seq"))
        summary = extractive_summary(messages, language_of(conversation), names_in(conversation))
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
    summary = written_summary(conversation, messages)
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
    summary = written_summary(conversation, messages)
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
