"""The assistant tools `conversations` owns: consent, the lead fields, and asking for a person.

Each tool is `(conversation, **arguments) -> dict`. A value the tool cannot accept raises ToolError,
which the executor hands back to the model as an error output it can recover from (ask again, say
sorry); it never becomes an exception in the turn. Personal data is stored only after the contact has
consented, when TALIA_REQUIRE_CONSENT is on.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.utils import timezone

from conversations import profile, realtime, state
from conversations.assistant.capabilities import (
    RECORD_CONSENT,
    REQUEST_HUMAN,
    SET_COMPANY,
    SET_EMAIL,
    SET_FULL_NAME,
    SET_PHONE,
)
from conversations.handoff import queue_outlook
from conversations.leadfields import LeadFieldError, fields_to_ask, write_lead_fields
from conversations.models import Contact, Conversation, ConversationStatus, HandoffRequest
from conversations.registry import Tool, tools


class ToolError(Exception):
    """The tool refused the call; the message is for the model and says what to do instead."""


def _string_argument(name: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": description}},
        "required": [name],
        "additionalProperties": False,
    }


def _store(conversation: Conversation, name: str, value: str) -> dict[str, Any]:
    try:
        written = write_lead_fields(conversation, {name: value})
    except LeadFieldError as exc:
        raise ToolError(str(exc)) from None
    result: dict[str, Any] = {"ok": True, name: written.fields[name], "missing": fields_to_ask(written.contact)}
    if written.lead_captured:
        result["lead_captured"] = True
    return result


def give_consent(contact_id: UUID | str) -> Contact:
    """Record that the contact consented to the current consent text (once; the first time counts), even
    after declining it earlier; every socket of the contact hears of it."""
    now = timezone.now()
    # One conditional UPDATE: of two concurrent answers, the first to land is the one recorded.
    changed = Contact.objects.filter(pk=contact_id, consent_given_at__isnull=True).update(
        consent_given_at=now,
        consent_declined_at=None,
        consent_text_version=profile.current().consent_text_version,
        updated=now,
    )
    contact = Contact.objects.get(pk=contact_id)
    if changed:
        realtime.publish_consent(contact)
    return contact


def decline_consent(contact_id: UUID | str) -> Contact:
    """Record that the contact declined (unless they had consented: the first yes counts); nothing
    personal is stored and nobody asks again, in the widget or in the dialogue."""
    now = timezone.now()
    changed = Contact.objects.filter(
        pk=contact_id, consent_given_at__isnull=True, consent_declined_at__isnull=True
    ).update(consent_declined_at=now, consent_text_version=profile.current().consent_text_version, updated=now)
    contact = Contact.objects.get(pk=contact_id)
    if changed:
        realtime.publish_consent(contact)
    return contact


def record_consent(conversation: Conversation, granted: bool) -> dict[str, Any]:
    if not granted:
        decline_consent(conversation.contact_id)
        return {"ok": True, "consent": "declined", "note": "Do not ask for or store personal data."}
    contact = give_consent(conversation.contact_id)
    return {"ok": True, "consent": "granted", "missing": fields_to_ask(contact)}


def set_full_name(conversation: Conversation, full_name: str) -> dict[str, Any]:
    return _store(conversation, "full_name", full_name)


def set_email(conversation: Conversation, email: str) -> dict[str, Any]:
    return _store(conversation, "email", email)


def set_phone_number(conversation: Conversation, phone_number: str) -> dict[str, Any]:
    return _store(conversation, "phone", phone_number)


def set_company_name(conversation: Conversation, company: str) -> dict[str, Any]:
    return _store(conversation, "company", company)


def request_human(conversation: Conversation, reason: str) -> dict[str, Any]:
    current = Conversation.objects.get(pk=conversation.pk)
    if current.status != ConversationStatus.BOT:
        raise ToolError(f"The conversation is already {current.status}: a person has been asked for.")
    try:
        handoff = state.request_handoff(
            current, requested_by=HandoffRequest.RequestedBy.ASSISTANT, reason=reason.strip()[:500]
        )
    except state.TransitionError as exc:
        raise ToolError(str(exc)) from None
    if handoff.out_of_hours:
        opening = profile.current().next_opening()
        back = f" The team is back at {opening.isoformat(timespec='minutes')}." if opening else ""
        return {
            "ok": True,
            "status": "queued",
            "out_of_hours": True,
            "back_at": opening.isoformat() if opening else None,
            "note": "The team is out of hours: tell the contact their request is queued and when a person will "
            f"answer, and offer to take an email or phone so the team can get back to them.{back}",
        }
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
