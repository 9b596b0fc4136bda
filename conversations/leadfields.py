"""The lead fields: one list, one normaliser per field, and the one function that writes them.

Everything that stores a contact's name, email, phone or company goes through `write_lead_fields()`: the
assistant's tools (conversations/assistant/tools.py), leads' whole-conversation analysis, and any door or
agent action that learns one. It normalises each value (a value it cannot accept raises LeadFieldError
with a message the model can act on), refuses personal data without consent when TALIA_REQUIRE_CONSENT is
on (ConsentRequired), and records `lead_captured` once per contact when a name and a way to reach them
are known. An agent's edit (the console sidebar, `agent=`) is the business acting on its own records: it
is not held back by the visitor's consent and is recorded as `contact_edited` by that agent. Every write
that changes a field pushes `contact.changed` to the staff viewing the contact (conversations.realtime), so
an open sidebar follows what the assistant captures. Readers (the console, summaries, the prompts) take
the fields from `lead_details()` and `missing_lead_fields()`, never from a list of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from conversations import events, profile, realtime
from conversations.models import Contact, Conversation, Event
from talia.text import collapse_whitespace

LEAD_FIELDS = ("full_name", "email", "phone", "company")
MAX_NAME_LENGTH = 200


class LeadFieldError(ValueError):
    """A value that cannot be stored; the message says what to ask the contact instead."""


class ConsentRequired(LeadFieldError):
    """Personal data without the contact's consent, while TALIA_REQUIRE_CONSENT is on."""

    def __init__(self) -> None:
        super().__init__(
            "The contact has not consented to storing personal data yet. Ask for consent first and call "
            "record_consent with their answer."
        )


def _full_name(value: str) -> str:
    name = collapse_whitespace(value)
    if len(name) < 2 or len(name) > MAX_NAME_LENGTH or not any(ch.isalpha() for ch in name):
        raise LeadFieldError(f"{value!r} does not look like a person's name. Ask the contact for their full name.")
    return name


def _email(value: str) -> str:
    address = value.strip()
    try:
        validate_email(address)
    except ValidationError:
        raise LeadFieldError(f"{value!r} is not a valid email address. Ask the contact to check it.") from None
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _phone(value: str) -> str:
    try:
        parsed = phonenumbers.parse(value, settings.TALIA_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise LeadFieldError(
            f"{value!r} is not a valid phone number. Ask for it with the country code, like +34 600 123 456."
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _company(value: str) -> str:
    name = collapse_whitespace(value)
    if not name or len(name) > MAX_NAME_LENGTH:
        raise LeadFieldError(f"{value!r} is not a company name. Ask the contact which company they are with.")
    return name


_NORMALISERS = {"full_name": _full_name, "email": _email, "phone": _phone, "company": _company}


def normalise(name: str, value: str) -> str:
    """`value` as stored for the lead field `name` (trimmed, E.164 phone, lower-case email domain)."""
    if name not in _NORMALISERS:
        raise LeadFieldError(f"{name!r} is not a lead field; the lead fields are {', '.join(LEAD_FIELDS)}.")
    return _NORMALISERS[name](value)


def lead_details(contact: Contact) -> dict[str, str]:
    """The contact's lead fields, in LEAD_FIELDS order ("" where unknown)."""
    return {name: getattr(contact, name) for name in LEAD_FIELDS}


def missing_lead_fields(contact: Contact) -> list[str]:
    return [name for name, value in lead_details(contact).items() if not value]


def fields_to_ask(contact: Contact) -> list[str]:
    """The details the assistant still asks this contact for: the profile's list, in its order (all of
    LEAD_FIELDS when the profile names none), without those already known."""
    missing = set(missing_lead_fields(contact))
    return [name for name in profile.current().lead_fields or LEAD_FIELDS if name in missing]


@dataclass
class Written:
    contact: Contact
    fields: dict[str, str] = field(default_factory=dict)  # what this call stored, normalised
    lead_captured: bool = False  # `lead_captured` was recorded by this call
    previous: dict[str, str] = field(default_factory=dict)  # what the stored fields held before ("" if empty)


def write_lead_fields(
    conversation: Conversation, values: dict[str, str], *, only_missing: bool = False, agent: Any = None
) -> Written:
    """Store lead fields on the conversation's contact; the one writer of them.

    Every value is normalised first, so one bad value stores nothing. With `only_missing`, fields the
    contact already has are left as they are (what an analysis found never overwrites what the contact
    gave). Raises LeadFieldError for a value it cannot accept and ConsentRequired without consent.

    With `agent` (a staff user editing in the console) consent is not required: the agent is the data
    controller's staff correcting its own records, not the assistant collecting data from the visitor. Only
    fields whose value changes are stored, and `contact_edited` records who changed which.
    """
    clean = {name: normalise(name, value) for name, value in values.items()}
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=conversation.contact_id)
        if settings.TALIA_REQUIRE_CONSENT and not contact.has_consented and agent is None:
            raise ConsentRequired()
        if only_missing:
            clean = {name: value for name, value in clean.items() if not getattr(contact, name)}
        if agent is not None:
            clean = {name: value for name, value in clean.items() if getattr(contact, name) != value}
        written = Written(contact, clean, previous={name: getattr(contact, name) for name in clean})
        if not clean:
            return written
        for name, value in clean.items():
            setattr(contact, name, value)
        contact.save(update_fields=[*clean, "updated"])
        # Staff viewing the contact's conversations see the new details in the sidebar without a reload.
        realtime.publish_contact_changed(contact.pk)
        if agent is not None:
            replaced = [name for name, old in written.previous.items() if old]
            events.emit(
                events.CONTACT_EDITED,
                conversation=conversation,
                agent_id=agent.pk,
                fields=list(clean),
                replaced=replaced,
            )
        if contact.full_name and (contact.email or contact.phone):
            written.lead_captured = record_lead_captured(contact, conversation)
    return written


def record_lead_captured(contact: Contact, conversation: Conversation | None, **extra: Any) -> bool:
    """Record `lead_captured` for `contact` unless it already was (once per contact); True if recorded now.

    `write_lead_fields()` calls it when the details are complete, leads' pipeline when a card is created
    (with `card_id` in `extra`); whichever comes first records it.
    """
    if Event.objects.filter(contact=contact, name=events.LEAD_CAPTURED.name).exists():
        return False
    events.emit(events.LEAD_CAPTURED, conversation=conversation, contact=contact, **lead_details(contact), **extra)
    return True
