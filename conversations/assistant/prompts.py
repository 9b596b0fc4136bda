"""Instructions for the model engines: a versioned prompt file per locale, plus what we know so far."""

from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from conversations.assistant.base import TurnContext
from conversations.models import Locale
from conversations.tools import missing_lead_fields

# Bump when a prompt file changes meaningfully; every AssistantRun records the version it used.
PROMPT_VERSION = "2026-11-v1"
PROMPT_DIR = Path(__file__).resolve().parent / "prompts"


@functools.cache
def prompt_text(locale: str) -> str:
    code = locale if locale in Locale.values else Locale.SPANISH
    return (PROMPT_DIR / f"{code}.md").read_text(encoding="utf-8").strip()


def instructions(context: TurnContext) -> str:
    """The prompt file for the contact's locale and the facts the model needs this turn.

    Sent on every call: instructions are not carried over by previous_response_id.
    """
    contact = context.contact
    known = {
        "full_name": contact.full_name,
        "email": contact.email,
        "phone": contact.phone,
        "company": contact.company,
    }
    facts = [
        f"You speak for: {settings.TALIA_BUSINESS_NAME}.",
        f"Today is {timezone.localdate().isoformat()}.",
        f"Channel: {context.conversation.channel}. Contact locale: {context.locale}.",
        "Consent to store personal data: " + ("given." if contact.has_consented else "not given yet."),
        "Known contact details: " + (", ".join(f"{k}={v}" for k, v in known.items() if v) or "none") + ".",
        "Missing contact details: " + (", ".join(missing_lead_fields(contact)) or "none") + ".",
    ]
    return prompt_text(context.locale) + "\n\n## Context\n" + "\n".join(f"- {fact}" for fact in facts)
