"""GDPR through the integrator API: the export holds everything about the contact, every message
included; the erasure leaves none of their personal data anywhere in the database (searched for in every
table, cast to text), keeps the conversations' skeleton and counts, and is recorded and audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_voice import services as voice
from conversations import csat, inbox, state
from conversations.console.actions import do_add_note
from conversations.leadfields import write_lead_fields
from conversations.models import (
    Channel,
    Contact,
    ContactIdentity,
    Conversation,
    ConversationStatus,
    Event,
    Message,
    Sender,
)
from leads import pipeline
from leads.models import LeadCard, LeadMovement, ScheduledEvent
from leads.tools import schedule_meeting
from talia.integrations.models import ApiAuditEntry
from talia.integrations.tests.api_helpers import Api, make_token

pytestmark = pytest.mark.django_db

EMAIL = "lucia.gdpr@example.com"
PHONE = "+34600111222"
NAME = "Lucía Zubizarreta"
BUSINESS_NUMBER = "+34910000000"
SEARCHED = (EMAIL, PHONE, PHONE.removeprefix("+34"), "Zubizarreta")


@pytest.fixture
def api():
    return Api(make_token("DPO tool"))


@pytest.fixture
def agent(django_user_model):
    return django_user_model.objects.create_user("ana-gdpr", first_name="Ana", is_staff=True)


@pytest.fixture
def lucia(agent, api):
    """A contact who told TalIA a lot, on the web chat and on WhatsApp."""
    web = inbox.receive(Channel.WEB, "gdpr-session-0001", f"Hola, soy {NAME}", assistant_turn=False).conversation
    contact = web.contact
    write_lead_fields(web, {"full_name": NAME, "email": EMAIL, "phone": PHONE, "company": "Zubi SL"}, agent=agent)
    inbox.receive(Channel.WEB, "gdpr-session-0001", f"Mi correo es {EMAIL} y mi móvil {PHONE}", assistant_turn=False)
    inbox.send(web, f"Gracias {NAME}, te escribimos a {EMAIL}", sender=Sender.ASSISTANT)
    state.request_handoff(web, requested_by="contact", reason=f"Llamadme al {PHONE}")
    state.claim_conversation(web, agent)
    do_add_note(agent, web, f"Prefiere el correo {EMAIL}")
    card, _ = pipeline.card_for(contact, web, LeadMovement.MovedBy.ASSISTANT)
    pipeline.update_card(card, summary=f"{NAME} ({EMAIL}) wants a quote")
    LeadCard.objects.filter(pk=card.pk).update(notes=f"Call {PHONE}")
    api.post(f"/api/v1/leads/{card.pk}/move", {"stage": "qualified", "reason": f"Confirmed by {EMAIL}"})
    start = (timezone.now() + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    schedule_meeting(web, f"Demo con {NAME}", start.isoformat(), None, f"Enviar invitación a {EMAIL}")
    ScheduledEvent.objects.filter(contact=contact).update(attendees=[{"name": NAME, "email": EMAIL}])
    state.close_conversation(web, ended_by="agent", reason="hecho")
    csat.rate_conversation(web, 4, f"Muy bien, escribid a {EMAIL}")

    # The same person on WhatsApp: the conversation is still open when they ask to be forgotten.
    ContactIdentity.objects.create(contact=contact, channel="whatsapp", value=PHONE)
    inbox.receive("whatsapp", PHONE, f"Soy {NAME} otra vez", display_name=NAME, assistant_turn=False)
    # And on the phone.
    ContactIdentity.objects.create(contact=contact, channel="voice", value=PHONE)
    voice.start_call({"CallSid": "CA-gdpr-0001", "From": PHONE, "To": BUSINESS_NUMBER})
    return Contact.objects.get(pk=contact.pk)


@pytest.fixture
def marco():
    """Someone else, whose data must stay."""
    conversation = inbox.receive(Channel.WEB, "gdpr-session-0002", "Soy Marco, marco@example.com").conversation
    return conversation.contact


def tables_holding(*needles: str) -> dict[str, int]:
    """Every table of the database with rows whose text form contains one of `needles`, and how many."""
    found: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            quoted = connection.ops.quote_name(table)
            where = " OR ".join(["r::text ILIKE %s"] * len(needles))
            cursor.execute(
                f"SELECT count(*) FROM {quoted} AS r WHERE {where}",  # noqa: S608
                [f"%{needle}%" for needle in needles],
            )
            if count := cursor.fetchone()[0]:
                found[table] = count
    return found


def test_the_export_holds_every_message_and_record_of_the_contact(api, lucia, marco):
    answer = api.get(f"/api/v1/contacts/{lucia.pk}/export")
    assert answer.status_code == 200, answer.content
    export = answer.json()

    assert export["contact"]["email"] == EMAIL and export["contact"]["phone"] == PHONE
    stored = Message.objects.filter(conversation__contact=lucia)
    exported = [message for conversation in export["conversations"] for message in conversation["messages"]]
    assert sorted(m["id"] for m in exported) == sorted(str(pk) for pk in stored.values_list("pk", flat=True))
    assert {m["text"] for m in exported} == set(stored.values_list("text", flat=True))
    assert len(export["conversations"]) == 3
    assert {(i["channel"], i["value"]) for i in export["identities"]} == {
        ("web", "gdpr-session-0001"),
        ("whatsapp", PHONE),
        ("voice", PHONE),
    }
    assert export["lead_card"]["summary"].startswith(NAME)
    assert [m["to_stage"] for m in export["lead_card"]["movements"]] == ["new", "qualified", "meeting"]
    assert export["meetings"][0]["attendees"] == [{"name": NAME, "email": EMAIL}]
    assert {e["id"] for e in export["events"]} == set(Event.objects.filter(contact=lucia).values_list("pk", flat=True))
    records = export["records"]
    assert records["channels_voice.voicecall"][0]["from_number"] == PHONE
    assert records["conversations.conversationrating"][0]["comment"].endswith(EMAIL)
    assert records["conversations.internalnote"][0]["text"].endswith(EMAIL)
    assert records["conversations.handoffrequest"][0]["reason"].endswith(PHONE)
    assert "marco@example.com" not in answer.content.decode()
    assert error_of_missing(api, "export")


def test_the_export_costs_the_same_queries_however_many_messages(api, lucia):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(f"/api/v1/contacts/{lucia.pk}/export").status_code == 200
        return len(captured)

    before = queries()
    for number in range(10):
        inbox.receive("whatsapp", PHONE, f"Mensaje {number}", assistant_turn=False)
    assert queries() == before


def error_of_missing(api: Api, action: str) -> bool:
    method = api.get if action == "export" else api.post
    answer = method(f"/api/v1/contacts/00000000-0000-4000-8000-000000000000/{action}")
    return answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def test_erasure_leaves_no_personal_data_anywhere_and_keeps_the_counts(api, lucia, marco):
    before = tables_holding(*SEARCHED)
    # The search finds what it looks for: the contact's data is spread over many tables.
    assert {
        "conversations_contact",
        "conversations_contactidentity",
        "conversations_message",
        "conversations_event",
        "conversations_handoffrequest",
        "conversations_internalnote",
        "conversations_conversationrating",
        "leads_leadcard",
        "leads_leadmovement",
        "leads_scheduledevent",
        "channels_voice_voicecall",
    } <= set(before)
    conversations = {
        c.pk: (c.status, c.last_seq, c.messages.count()) for c in Conversation.objects.filter(contact=lucia)
    }
    events_before = Event.objects.filter(contact=lucia).count()
    said = Message.objects.filter(conversation__contact=lucia).exclude(text="").count()

    answer = api.post(f"/api/v1/contacts/{lucia.pk}/erase", {"reason": "GDPR request 42"})

    assert answer.status_code == 200, answer.content
    body = answer.json()
    # Still talking on WhatsApp and the phone: not marked anonymised, so the retention policy clears what
    # they say next in its turn; the closed web chat is marked.
    assert body["contact"]["email"] == "" and body["contact"]["anonymised_at"] is None
    assert body["erased"]["conversations"] == 3 and body["erased"]["messages"] == said > 3
    assert tables_holding(*SEARCHED) == {}
    # The skeleton stays: same conversations, statuses, numbers of messages; the lead's stage and meeting time.
    after = {c.pk: (c.status, c.last_seq, c.messages.count()) for c in Conversation.objects.filter(contact=lucia)}
    assert after == conversations
    assert ConversationStatus.CLOSED in {status for status, _, _ in after.values()}
    assert [c.anonymised_at is not None for c in Conversation.objects.filter(contact=lucia).order_by("opened_at")] == [
        True,
        False,
        False,
    ]
    assert not Message.objects.filter(conversation__contact=lucia).exclude(text="").exists()
    assert LeadCard.objects.get(contact=lucia).stage == "meeting"
    assert ScheduledEvent.objects.get(contact=lucia).start is not None
    # Recorded as an event (counts only) and audited.
    erased = Event.objects.get(name="contact_erased")
    assert erased.contact_id == lucia.pk and erased.payload["conversations"] == 3
    # Every value under a personal key of the sinks' contract is blanked, the business's number too.
    started = Event.objects.get(name="call_started", contact=lucia)
    assert (started.payload["from_number"], started.payload["to_number"]) == ("", "")
    assert Event.objects.filter(contact=lucia).count() == events_before + 1
    audit = ApiAuditEntry.objects.get(action="erase")
    assert (audit.object_id, audit.summary, audit.method) == (str(lucia.pk), "GDPR request 42", "POST")
    # Someone else's data is untouched.
    assert Message.objects.get(conversation__contact=marco).text == "Soy Marco, marco@example.com"
    assert tables_holding("marco@example.com")


def test_erasing_twice_is_harmless_and_a_read_token_cannot_erase(api, lucia):
    reader = Api(make_token("BI", scope="read"))
    refused = reader.post(f"/api/v1/contacts/{lucia.pk}/erase", {})
    assert refused.status_code == 403 and Contact.objects.get(pk=lucia.pk).email == EMAIL

    assert api.post(f"/api/v1/contacts/{lucia.pk}/erase", {}).status_code == 200
    assert api.post(f"/api/v1/contacts/{lucia.pk}/erase").status_code == 200
    assert tables_holding(*SEARCHED) == {}
    assert ApiAuditEntry.objects.filter(action="erase").count() == 2
    long = api.post(f"/api/v1/contacts/{lucia.pk}/erase", {"reason": "x" * 501})
    assert long.status_code == 400 and set(long.json()["error"]["fields"]) == {"reason"}
    unknown = api.post(f"/api/v1/contacts/{lucia.pk}/erase", {"force": True})
    assert unknown.status_code == 400 and unknown.json()["error"]["fields"] == {"force": ["Unknown field."]}
    assert error_of_missing(api, "erase")


def test_a_contact_whose_conversations_are_all_closed_is_marked_anonymised(api, marco):
    conversation = Conversation.objects.get(contact=marco)
    state.close_conversation(conversation, ended_by="agent", reason="hecho")

    answer = api.post(f"/api/v1/contacts/{marco.pk}/erase", {})

    assert answer.status_code == 200 and answer.json()["contact"]["anonymised_at"] is not None
    assert Conversation.objects.get(pk=conversation.pk).anonymised_at is not None
    assert tables_holding("marco@example.com") == {}
