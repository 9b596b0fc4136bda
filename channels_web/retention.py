"""Retention for web chat sessions (conversations.retention): an anonymised contact's sessions keep their
times, origin, close reason and counts (the session KPIs) and lose the visitor's address and browser."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from channels_web.models import WebchatSession
from conversations.retention import RetentionPart, parts


def scrub_conversations(ids: list[UUID]) -> Iterable[tuple[str, int]]:
    return ()


def scrub_contacts(ids: list[UUID]) -> Iterable[tuple[str, int]]:
    sessions = WebchatSession.objects.filter(contact_id__in=ids).exclude(ip=None, user_agent="")
    yield "web_sessions", sessions.update(ip=None, user_agent="")


PART = RetentionPart("web", scrub_conversations, scrub_contacts)


def register() -> None:
    parts.register(PART)
