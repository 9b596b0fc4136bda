"""The one writer of lead fields: normalised, consent checked, `lead_captured` recorded once."""

from __future__ import annotations

import pytest

from conversations import inbox
from conversations.assistant.tools import give_consent
from conversations.leadfields import (
    LEAD_FIELDS,
    ConsentRequired,
    LeadFieldError,
    lead_details,
    missing_lead_fields,
    write_lead_fields,
)
from conversations.models import Contact, Event

pytestmark = pytest.mark.django_db


def captured(contact: Contact) -> int:
    return Event.objects.filter(contact=contact, name="lead_captured").count()


def test_values_are_normalised_before_they_are_stored(lucia: inbox.Received) -> None:
    give_consent(lucia.contact.pk)
    written = write_lead_fields(
        lucia.conversation,
        {
            "full_name": "  Lucía   Pérez ",
            "email": "Lucia@Example.COM",
            "phone": "600 123 456",
            "company": " Acme  S.L.",
        },
    )

    assert written.fields == {
        "full_name": "Lucía Pérez",
        "email": "Lucia@example.com",
        "phone": "+34600123456",
        "company": "Acme S.L.",
    }
    contact = Contact.objects.get(pk=lucia.contact.pk)
    assert lead_details(contact) == written.fields
    assert missing_lead_fields(contact) == []
    assert list(lead_details(contact)) == list(LEAD_FIELDS)


def test_one_bad_value_stores_nothing(lucia: inbox.Received) -> None:
    give_consent(lucia.contact.pk)
    with pytest.raises(LeadFieldError, match="not a valid phone number"):
        write_lead_fields(lucia.conversation, {"email": "lucia@example.com", "phone": "12"})

    assert Contact.objects.get(pk=lucia.contact.pk).email == ""


def test_without_consent_nothing_is_stored_when_consent_is_required(lucia: inbox.Received, settings) -> None:
    settings.TALIA_REQUIRE_CONSENT = True
    with pytest.raises(ConsentRequired):
        write_lead_fields(lucia.conversation, {"email": "lucia@example.com"})
    assert Contact.objects.get(pk=lucia.contact.pk).email == ""


def test_lead_captured_is_recorded_once_when_a_name_and_a_way_to_reach_them_are_known(lucia: inbox.Received) -> None:
    give_consent(lucia.contact.pk)
    assert not write_lead_fields(lucia.conversation, {"full_name": "Lucía Pérez"}).lead_captured
    assert write_lead_fields(lucia.conversation, {"email": "lucia@example.com"}).lead_captured
    assert not write_lead_fields(lucia.conversation, {"phone": "+34 600 123 456"}).lead_captured

    assert captured(lucia.contact) == 1


def test_only_missing_never_overwrites_what_the_contact_gave(lucia: inbox.Received) -> None:
    give_consent(lucia.contact.pk)
    write_lead_fields(lucia.conversation, {"email": "lucia@example.com"})
    written = write_lead_fields(
        lucia.conversation, {"email": "other@example.com", "company": "Acme"}, only_missing=True
    )

    assert written.fields == {"company": "Acme"}
    assert Contact.objects.get(pk=lucia.contact.pk).email == "lucia@example.com"
