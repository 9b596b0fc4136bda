"""The contact sidebar of a conversation's page: edits through the one lead writer, past conversations."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from conversations import events, inbox, state
from conversations.models import Channel, Contact, ConversationSummary, Event
from conversations.tests.console_helpers import signed_in

pytestmark = pytest.mark.django_db


def edit(client, conversation, **fields):
    return client.patch(
        f"/console/api/conversations/{conversation.pk}/contact",
        data=json.dumps(fields),
        content_type="application/json",
    )


@pytest.fixture
def waiting():
    conversation = inbox.receive(Channel.WEB, "sidebar-session-0001", "Hola", assistant_turn=False).conversation
    state.request_handoff(conversation, requested_by="contact")
    return conversation


def test_an_agent_edit_goes_through_the_lead_writer_even_without_the_visitors_consent(waiting, make_agent, settings):
    settings.TALIA_REQUIRE_CONSENT = True  # the visitor never answered the consent notice
    ana = make_agent("ana")
    client = signed_in(ana)

    first = edit(client, waiting, full_name="  Lucía   Pérez ", email="Lucia@Example.COM")
    second = edit(client, waiting, email="lucia@otra.example", company="Acme")

    assert first.status_code == 200, first.content
    assert first.json()["changed"] == {"full_name": "Lucía Pérez", "email": "Lucia@example.com"}
    assert first.json()["previous"] == {"full_name": "", "email": ""}
    assert first.json()["lead_captured"] is True
    # The old value comes back so the sidebar can show what was replaced.
    assert second.json()["previous"] == {"email": "Lucia@example.com", "company": ""}
    contact = Contact.objects.get(pk=waiting.contact_id)
    assert (contact.full_name, contact.email, contact.company) == ("Lucía Pérez", "lucia@otra.example", "Acme")
    edited = [e.payload for e in Event.objects.filter(name=events.CONTACT_EDITED.name).order_by("pk")]
    assert edited == [
        {"agent_id": ana.pk, "fields": ["full_name", "email"], "replaced": []},
        {"agent_id": ana.pk, "fields": ["email", "company"], "replaced": ["email"]},
    ]
    captured = Event.objects.get(name=events.LEAD_CAPTURED.name)
    assert captured.payload["email"] == "Lucia@example.com" and captured.conversation_id == waiting.pk


def test_an_edit_that_changes_nothing_records_nothing(waiting, make_agent):
    client = signed_in(make_agent("ana"))
    edit(client, waiting, company="Acme")

    again = edit(client, waiting, company=" Acme ")

    assert again.status_code == 200 and again.json()["changed"] == {}
    assert Event.objects.filter(name=events.CONTACT_EDITED.name).count() == 1


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"full_name": "Lucía Pérez", "email": "lucia@"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"full_name": "7"}, "full_name"),
        ({"company": "   "}, "company"),
        ({}, "non_field_errors"),
    ],
)
def test_an_invalid_value_is_refused_with_its_field_and_nothing_is_stored(waiting, make_agent, fields, bad):
    response = edit(signed_in(make_agent("ana")), waiting, **fields)

    assert response.status_code == 400
    assert bad in response.json()["error"]["fields"]
    contact = Contact.objects.get(pk=waiting.contact_id)
    assert (contact.full_name, contact.email, contact.phone, contact.company) == ("", "", "", "")
    assert not Event.objects.filter(name=events.CONTACT_EDITED.name).exists()


def test_only_who_may_open_the_conversation_may_edit_its_contact(waiting, make_agent, people):
    state.claim_conversation(waiting, make_agent("bruno"))

    refused = edit(signed_in(people["agent"]), waiting, company="Acme")
    anonymous = edit(signed_in(None), waiting, company="Acme")
    supervisor = edit(signed_in(people["staff"]), waiting, company="Acme")

    assert refused.status_code == 403
    assert anonymous.status_code in (401, 403)
    assert supervisor.status_code == 200
    assert Contact.objects.get(pk=waiting.contact_id).company == "Acme"


def close_with_summary(conversation, agent, text):
    state.request_handoff(conversation, requested_by="contact")
    state.claim_conversation(conversation, agent)
    state.close_conversation(conversation, ended_by="agent")
    ConversationSummary.objects.update_or_create(
        conversation=conversation,
        defaults={
            "summary": text,
            "message_count": 1,
            "started_at": conversation.created,
            "ended_at": timezone.now(),
            "ended_by": "agent",
        },
    )


def test_past_conversations_show_their_summary_and_link_only_when_the_agent_may_open_them(make_agent):
    ana, bruno = make_agent("ana"), make_agent("bruno")
    identity = "sidebar-session-0002"
    mine = inbox.receive(Channel.WEB, identity, "Una factura", assistant_turn=False).conversation
    close_with_summary(mine, ana, "Pidió una factura de marzo.")
    theirs = inbox.receive(Channel.WEB, identity, "Otra cosa", assistant_turn=False).conversation
    close_with_summary(theirs, bruno, "Preguntó por el plan anual.")
    current = inbox.receive(Channel.WEB, identity, "Hola de nuevo", assistant_turn=False).conversation
    assert len({mine.pk, theirs.pk, current.pk}) == 3

    html = signed_in(ana).get(f"/console/conversations/{current.pk}/").content.decode()

    assert "Pidió una factura de marzo." in html and "Preguntó por el plan anual." in html
    assert f'href="/console/conversations/{mine.pk}/"' in html
    assert f"/console/conversations/{theirs.pk}/" not in html
    assert f'data-conversation-id="{theirs.pk}"' in html


def test_the_sidebar_shows_identities_consent_and_location(make_agent):
    received = inbox.receive(Channel.WEB, "sidebar-session-0003", "Hola", assistant_turn=False)
    contact = received.conversation.contact
    contact.metadata = {"geolocation": {"city": "Sevilla", "regionName": "Andalucía", "country": "Spain"}}
    contact.consent_given_at = timezone.now()
    contact.save(update_fields=["metadata", "consent_given_at"])

    html = signed_in(make_agent("ana")).get(f"/console/conversations/{received.conversation.pk}/").content.decode()

    assert "Sevilla, Andalucía, Spain" in html
    assert "…0003" in html and "sidebar-session-0003" not in html  # a web session id lets its holder resume
    assert 'id="contact-consent"' in html
