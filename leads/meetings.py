"""Meetings in words: resolving "el viernes a las 10" to a moment, and spotting a meeting spread over a
whole conversation (intent in one message, the day in another, the time and the topic in later ones).

Relative dates are read against the time of the message that said them, in TALIA_TIME_ZONE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from django.utils import timezone

from conversations.assistant.offline.texts import TEXTS
from conversations.models import Contact, Message, Sender
from talia.text import collapse_whitespace
from talia.understanding import (
    CALL_WORDS,
    MEETING_WORDS,
    find_meeting_time,
    is_topic,
    plain_words,
)

DEFAULT_TITLES = {"es": "Reunión", "en": "Meeting"}


def is_placeholder(title: str, contact: Contact) -> bool:
    """A title that names no topic: the analysis's default, or the offline engine's ("Reunión pedida en
    el chat", "Reunión con Ana Pérez")."""
    named = {text["meeting_topic_named"].format(name=contact.full_name) for text in TEXTS.values()}
    generic = {*DEFAULT_TITLES.values(), *(text["meeting_topic"] for text in TEXTS.values())}
    return title in generic or bool(contact.full_name and title in named)


def resolve_start(value: str, locale: str, reference: datetime) -> datetime | None:
    """An ISO 8601 moment (local time when it has no offset), or a day and a time in words; else None."""
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is not None:
        return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
    for language in dict.fromkeys([locale, "es", "en"]):
        found = find_meeting_time(value, language, now=reference)
        if found.day and found.at:
            return _combine(found.day, found.at)
    return None


def _combine(day: date, at: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, at))


@dataclass(frozen=True)
class MeetingFinding:
    title: str
    start: datetime
    message: Message  # the message that completed the day and time


def meetings_in(messages: list[Message], locale: str) -> list[MeetingFinding]:
    """Meetings the contact asked for across the conversation, read in order (rules, no model).

    A meeting starts with a request ("quiero agendar una reunión"); the day and the time may come in the
    same or later messages; the next short message that is neither a date nor a yes/no is its topic.
    """
    found: list[MeetingFinding] = []
    wanted = False
    day: date | None = None
    at: time | None = None
    completed_by: Message | None = None
    title = ""

    def emit() -> None:
        nonlocal wanted, day, at, completed_by, title
        if day and at and completed_by is not None:
            found.append(
                MeetingFinding(title or DEFAULT_TITLES.get(locale, "Meeting"), _combine(day, at), completed_by)
            )
        wanted, day, at, completed_by, title = False, None, None, None, ""

    for message in messages:
        if message.sender != Sender.CONTACT or not message.text.strip():
            continue
        words = plain_words(message.text)
        asks = bool(MEETING_WORDS.search(words) or CALL_WORDS.search(words))
        if asks and wanted and day and at:
            emit()  # a second meeting request: the first is complete without a topic
        wanted = wanted or asks
        if not wanted:
            continue
        proposed = find_meeting_time(message.text, locale, now=message.created)
        if proposed.day or proposed.at:
            day, at = proposed.day or day, proposed.at or at
            if day and at:
                completed_by = message
        elif not asks and day and at and is_topic(message.text):
            title = collapse_whitespace(message.text.strip().rstrip(".!"))
            emit()
    if wanted:
        emit()
    return found
