"""The assistant tools `conversations` owns: consent, the lead fields, and asking for a person.

Each tool is `(conversation, **arguments) -> dict`. A value the tool cannot accept raises ToolError,
which the executor hands back to the model as an error output it can recover from (ask again, say
sorry); it never becomes an exception in the turn. Personal data is stored only after the contact has
consented, when TALIA_REQUIRE_CONSENT is on.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from conversations import events, state
from conversations.assistant.capabilities import (
    RECORD_CONSENT,
    REQUEST_HUMAN,
    SET_COMPANY,
    SET_EMAIL,
    SET_FULL_NAME,
    SET_PHONE,
)
from conversations.handoff import queue_outlook
from conversations.models import Contact, Conversation, ConversationStatus, Event, HandoffRequest
from conversations.registry import Tool, tools
from talia.text import collapse_whitespace

MAX_NAME_LENGTH = 200


class ToolError(Exception):
    """The tool refused the call; the message is for the model and says what to do instead."""


def _string_argument(name: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": description}},
        "required": [name],
        "additionalProperties": False,
    }


def _locked_contact(conversation: Conversation) -> Contact:
    return Contact.objects.select_for_update().get(pk=conversation.contact_id)


def _require_consent(contact: Contact) -> None:
    if settings.TALIA_REQUIRE_CONSENT and not contact.has_consented:
        raise ToolError(
            "The contact has not consented to storing personal data yet. Ask for consent first and call "
            "record_consent with their answer."
        )


def _store_lead_field(conversation: Conversation, field: str, value: str) -> dict[str, Any]:
    with transaction.atomic():
        contact = _locked_contact(conversation)
        _require_consent(contact)
        setattr(contact, field, value)
        contact.save(update_fields=[field, "updated"])
        captured = _record_lead_if_complete(conversation, contact)
    result: dict[str, Any] = {"ok": True, field: value, "missing": missing_lead_fields(contact)}
    if captured:
        result["lead_captured"] = True
    return result


def missing_lead_fields(contact: Contact) -> list[str]:
    fields = {
        "full_name": contact.full_name,
        "email": contact.email,
        "phone": contact.phone,
        "company": contact.company,
    }
    return [name for name, value in fields.items() if not value]


def _record_lead_if_complete(conversation: Conversation, contact: Contact) -> bool:
    """Record `lead_captured` once per contact, when a name and a way to reach them are known."""
    if not contact.full_name or not (contact.email or contact.phone):
        return False
    return record_lead_captured(contact, conversation)


def record_lead_captured(contact: Contact, conversation: Conversation | None, **extra: Any) -> bool:
    """Record `lead_captured` for `contact` unless it already was (once per contact); True if recorded now.

    The core's lead tools call it when the details are complete, leads' pipeline when a card is created
    (with `card_id` in `extra`); whichever comes first records it.
    """
    if Event.objects.filter(contact=contact, name=events.LEAD_CAPTURED.name).exists():
        return False
    events.emit(
        events.LEAD_CAPTURED,
        conversation=conversation,
        contact=contact,
        full_name=contact.full_name,
        email=contact.email,
        phone=contact.phone,
        company=contact.company,
        **extra,
    )
    return True


def give_consent(contact_id: UUID | str) -> Contact:
    """Record that the contact consented to the current consent text (once; the first time counts)."""
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact_id)
        if not contact.has_consented:
            contact.consent_given_at = timezone.now()
            contact.consent_text_version = settings.TALIA_CONSENT_VERSION
            contact.save(update_fields=["consent_given_at", "consent_text_version", "updated"])
    return contact


def record_consent(conversation: Conversation, granted: bool) -> dict[str, Any]:
    if not granted:
        return {"ok": True, "consent": "declined", "note": "Do not ask for or store personal data."}
    contact = give_consent(conversation.contact_id)
    return {"ok": True, "consent": "granted", "missing": missing_lead_fields(contact)}


def set_full_name(conversation: Conversation, full_name: str) -> dict[str, Any]:
    name = collapse_whitespace(full_name)
    if len(name) < 2 or len(name) > MAX_NAME_LENGTH or not any(ch.isalpha() for ch in name):
        raise ToolError(f"{full_name!r} does not look like a person's name. Ask the contact for their full name.")
    return _store_lead_field(conversation, "full_name", name)


def set_email(conversation: Conversation, email: str) -> dict[str, Any]:
    address = email.strip()
    try:
        validate_email(address)
    except ValidationError:
        raise ToolError(f"{email!r} is not a valid email address. Ask the contact to check it.") from None
    local, _, domain = address.rpartition("@")
    return _store_lead_field(conversation, "email", f"{local}@{domain.lower()}")


def set_phone_number(conversation: Conversation, phone_number: str) -> dict[str, Any]:
    try:
        parsed = phonenumbers.parse(phone_number, settings.TALIA_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ToolError(
            f"{phone_number!r} is not a valid phone number. Ask for it with the country code, like +34 600 123 456."
        )
    return _store_lead_field(
        conversation, "phone", phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    )


def set_company_name(conversation: Conversation, company: str) -> dict[str, Any]:
    name = collapse_whitespace(company)
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ToolError(f"{company!r} is not a company name. Ask the contact which company they are with.")
    return _store_lead_field(conversation, "company", name)


def request_human(conversation: Conversation, reason: str) -> dict[str, Any]:
    current = Conversation.objects.get(pk=conversation.pk)
    if current.status != ConversationStatus.BOT:
        raise ToolError(f"The conversation is already {current.status}: a person has been asked for.")
    try:
        state.request_handoff(current, requested_by=HandoffRequest.RequestedBy.ASSISTANT, reason=reason.strip()[:500])
    except state.TransitionError as exc:
        raise ToolError(str(exc)) from None
    outlook = queue_outlook()
    if outlook["agents_online"] == 0:
        note = (
            "No agent is online right now. Tell the contact honestly that nobody is available at this moment, "
            "that their request is queued and a person will answer as soon as one connects"
        )
        if outlook["queue_timeout_s"]:
            minutes = -(-outlook["queue_timeout_s"] // 60)  # rounded up
            note += f", and that you will keep helping them if nobody joins within {minutes} minutes"
        note += "."
    else:
        note = "Tell the contact a person will join the conversation soon."
    return {"ok": True, "status": "queued", "agents_online": outlook["agents_online"], "note": note}


CORE_TOOLS = [
    Tool(
        "record_consent",
        "Record whether the contact agrees that their personal data (name, email, phone, company) is stored "
        "to follow up on their request. Call it as soon as they answer the consent question.",
        {
            "type": "object",
            "properties": {"granted": {"type": "boolean", "description": "True if the contact agreed."}},
            "required": ["granted"],
            "additionalProperties": False,
        },
        record_consent,
        capability=RECORD_CONSENT,
    ),
    Tool(
        "set_full_name",
        "Store the contact's full name, as they wrote it.",
        _string_argument("full_name", "The contact's full name."),
        set_full_name,
        capability=SET_FULL_NAME,
    ),
    Tool(
        "set_email",
        "Store the contact's email address.",
        _string_argument("email", "The email address, exactly as the contact gave it."),
        set_email,
        capability=SET_EMAIL,
    ),
    Tool(
        "set_phone_number",
        "Store the contact's phone number.",
        _string_argument("phone_number", "The phone number, with country code when the contact gave one."),
        set_phone_number,
        capability=SET_PHONE,
    ),
    Tool(
        "set_company_name",
        "Store the name of the company the contact works for or represents.",
        _string_argument("company", "The company name."),
        set_company_name,
        capability=SET_COMPANY,
    ),
    Tool(
        "request_human",
        "Hand the conversation to a human agent: when the contact asks for a person, or when you cannot help.",
        _string_argument("reason", "Why a person is needed, in one short sentence for the agent."),
        request_human,
        capability=REQUEST_HUMAN,
    ),
]


def register_core_tools() -> None:
    for tool in CORE_TOOLS:
        tools.register(tool)
