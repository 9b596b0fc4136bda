"""The integrator API's endpoints: each one's happy path, a malformed request (a 400 saying what is
wrong), unknown ids (404 JSON), pagination, filters, and the audit row every write leaves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import inbox, state
from conversations.leadfields import write_lead_fields
from conversations.models import Channel, Conversation, Event, Message, Sender
from leads import pipeline
from leads.models import LeadCard, LeadMovement, ScheduledEvent
from leads.tools import schedule_meeting
from talia.integrations.models import ApiAuditEntry, ApiToken
from talia.integrations.tests.api_helpers import Api, make_token

pytestmark = pytest.mark.django_db

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(autouse=True)
def events_at_once(settings):
    settings.TALIA_API_EVENTS_DELAY_S = 0


@pytest.fixture
def api():
    return Api(make_token("CRM", personal_data=True))


@pytest.fixture
def agent(django_user_model):
    return django_user_model.objects.create_user("ana-api", first_name="Ana", is_staff=True)


def open_web(session: str, text: str = "Hola") -> Conversation:
    return inbox.receive(Channel.WEB, session, text, assistant_turn=False).conversation


def error_of(answer, status: int) -> dict:
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"] == "application/json"
    return answer.json()["error"]


# --- Contacts ----------------------------------------------------------------------------------------


def test_contacts_are_listed_searched_and_paginated(api, agent):
    lucia = open_web("api-contacts-0001")
    write_lead_fields(lucia, {"full_name": "Lucía Pérez", "email": "lucia@example.com"}, agent=agent)
    marco = open_web("api-contacts-0002")
    write_lead_fields(marco, {"full_name": "Marco Rossi", "phone": "+34600111333"}, agent=agent)
    open_web("api-contacts-0003")

    page = api.get("/api/v1/contacts", {"limit": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"].endswith("limit=2&offset=2")
    rest = api.get("/api/v1/contacts", {"limit": 2, "offset": 2}).json()
    ids = {item["id"] for item in page["results"] + rest["results"]}
    assert len(ids) == 3 and rest["next"] is None

    by_email = api.get("/api/v1/contacts", {"search": "LUCIA@"}).json()["results"]
    by_phone = api.get("/api/v1/contacts", {"search": "600111"}).json()["results"]
    by_name = api.get("/api/v1/contacts", {"search": "rossi"}).json()["results"]
    assert [c["full_name"] for c in by_email] == ["Lucía Pérez"]
    assert [c["full_name"] for c in by_phone] == [c["full_name"] for c in by_name] == ["Marco Rossi"]

    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert api.get("/api/v1/contacts", {"updated_since": later}).json()["count"] == 0


def test_malformed_list_queries_are_400s_naming_the_parameter(api):
    assert error_of(api.get("/api/v1/contacts", {"updated_since": "yesterday"}), 400)["fields"].keys() == {
        "updated_since"
    }
    assert "limit" in error_of(api.get("/api/v1/contacts", {"limit": "lots"}), 400)["fields"]
    assert "limit" in error_of(api.get("/api/v1/conversations", {"limit": 0}), 400)["fields"]
    assert "offset" in error_of(api.get("/api/v1/leads", {"offset": -1}), 400)["fields"]
    assert "status" in error_of(api.get("/api/v1/conversations", {"status": "sleeping"}), 400)["fields"]
    assert "stage" in error_of(api.get("/api/v1/leads", {"stage": "nowhere"}), 400)["fields"]
    assert "start_from" in error_of(api.get("/api/v1/meetings", {"start_from": "soon"}), 400)["fields"]


def test_a_contact_is_read_and_updated_with_validation_and_an_audit_row(api):
    contact = open_web("api-contacts-0010").contact

    assert api.get(f"/api/v1/contacts/{contact.pk}").json()["id"] == str(contact.pk)
    changed = api.patch(
        f"/api/v1/contacts/{contact.pk}",
        {"full_name": "  Lucía   Pérez ", "email": "Lucia@EXAMPLE.com", "phone": "600 111 222", "locale": "en"},
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert (body["full_name"], body["email"], body["phone"], body["locale"]) == (
        "Lucía Pérez",
        "Lucia@example.com",
        "+34600111222",
        "en",
    )
    audit = ApiAuditEntry.objects.get()
    assert (audit.method, audit.path, audit.object_type, audit.object_id, audit.action) == (
        "PATCH",
        f"/api/v1/contacts/{contact.pk}",
        "contact",
        str(contact.pk),
        "update",
    )
    assert audit.token == ApiToken.objects.get() and "lucia" not in audit.summary.lower()

    bad = error_of(api.patch(f"/api/v1/contacts/{contact.pk}", {"email": "lucia@", "nickname": "Lu"}), 400)
    assert bad["code"] == "invalid" and set(bad["fields"]) == {"nickname"}
    bad = error_of(api.patch(f"/api/v1/contacts/{contact.pk}", {"email": "lucia@", "phone": "12"}), 400)
    assert set(bad["fields"]) == {"email", "phone"} and "valid email" in bad["fields"]["email"][0]
    assert error_of(api.patch(f"/api/v1/contacts/{contact.pk}", {}), 400)["fields"]["non_field_errors"]
    assert error_of(api.patch(f"/api/v1/contacts/{contact.pk}", raw="{nope"), 400)["code"] == "malformed_json"
    assert error_of(api.patch(f"/api/v1/contacts/{contact.pk}", [1, 2]), 400)["code"] == "not_an_object"
    assert error_of(api.patch(f"/api/v1/contacts/{MISSING}", {"company": "X"}), 404)["code"] == "not_found"
    assert error_of(api.get("/api/v1/contacts/not-a-uuid"), 404)["code"] == "not_found"
    assert ApiAuditEntry.objects.count() == 1  # refused writes leave no audit row


# --- Conversations -----------------------------------------------------------------------------------


def test_conversations_are_filtered_and_their_messages_paged_by_seq(api, agent):
    first = open_web("api-conv-0001", "uno")
    for number in range(2, 6):
        inbox.receive(Channel.WEB, "api-conv-0001", f"mensaje {number}", assistant_turn=False)
    second = open_web("api-conv-0002")
    state.close_conversation(second, ended_by="agent", reason="hecho")

    everything = api.get("/api/v1/conversations").json()
    assert everything["count"] == 2
    closed = api.get("/api/v1/conversations", {"status": "closed"}).json()["results"]
    assert [c["id"] for c in closed] == [str(second.pk)]
    mine = api.get("/api/v1/conversations", {"contact": str(first.contact_id), "channel": "web"}).json()["results"]
    assert [c["id"] for c in mine] == [str(first.pk)]
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert api.get("/api/v1/conversations", {"created_from": future}).json()["count"] == 0
    assert api.get("/api/v1/conversations", {"created_to": future}).json()["count"] == 2
    assert api.get(f"/api/v1/conversations/{first.pk}").json()["last_seq"] == 5

    page = api.get(f"/api/v1/conversations/{first.pk}/messages", {"limit": 2}).json()
    seqs = [m["seq"] for m in page["messages"]]
    while page["next_after_seq"] is not None:
        page = api.get(
            f"/api/v1/conversations/{first.pk}/messages", {"limit": 2, "after_seq": page["next_after_seq"]}
        ).json()
        seqs += [m["seq"] for m in page["messages"]]
    assert seqs == [1, 2, 3, 4, 5]
    assert error_of(api.get(f"/api/v1/conversations/{first.pk}/messages", {"after_seq": "x"}), 400)["fields"]
    assert error_of(api.get(f"/api/v1/conversations/{MISSING}/messages"), 404)["code"] == "not_found"
    assert error_of(api.get(f"/api/v1/conversations/{MISSING}"), 404)["code"] == "not_found"


# --- Leads and meetings ------------------------------------------------------------------------------


def test_lead_cards_are_listed_and_moved_with_a_reason_as_a_movement(api):
    conversation = open_web("api-leads-0001")
    card, _ = pipeline.card_for(conversation.contact, conversation, LeadMovement.MovedBy.ASSISTANT)
    other = open_web("api-leads-0002")
    pipeline.card_for(other.contact, other, LeadMovement.MovedBy.ASSISTANT)

    assert api.get("/api/v1/leads").json()["count"] == 2
    assert api.get("/api/v1/leads", {"stage": "qualified"}).json()["count"] == 0
    assert api.get(f"/api/v1/leads/{card.pk}").json()["stage"] == "new"

    moved = api.post(f"/api/v1/leads/{card.pk}/move", {"stage": "qualified", "reason": "Budget approved in CRM"})
    assert moved.status_code == 200, moved.content
    body = moved.json()
    assert body["moved"] is True and body["card"]["stage"] == "qualified"
    assert body["movement"]["from_stage"] == "new" and body["movement"]["reason"] == "Budget approved in CRM"
    movement = LeadMovement.objects.get(pk=body["movement"]["id"])
    assert (movement.to_stage, movement.moved_by) == ("qualified", LeadMovement.MovedBy.SYSTEM)
    assert [c["id"] for c in api.get("/api/v1/leads", {"stage": "qualified"}).json()["results"]] == [card.pk]
    assert ApiAuditEntry.objects.get().action == "move"

    again = api.post(f"/api/v1/leads/{card.pk}/move", {"stage": "qualified"}).json()
    assert again["moved"] is False and again["movement"] is None

    unknown = error_of(api.post(f"/api/v1/leads/{card.pk}/move", {"stage": "nowhere"}), 400)
    assert "Unknown stage 'nowhere'" in unknown["fields"]["stage"][0]
    assert "stage" in error_of(api.post(f"/api/v1/leads/{card.pk}/move", {"reason": "x"}), 400)["fields"]
    closing = error_of(api.post(f"/api/v1/leads/{card.pk}/move", {"stage": "won"}), 409)
    assert closing["code"] == "stage_refused" and "Only a person" in closing["message"]
    assert LeadCard.objects.get(pk=card.pk).stage == "qualified"
    assert error_of(api.post("/api/v1/leads/999999/move", {"stage": "qualified"}), 404)["code"] == "not_found"
    assert ApiAuditEntry.objects.count() == 2  # the move and the move that changed nothing


def test_meetings_are_listed_by_start_and_status(api):
    conversation = open_web("api-meet-0001")
    soon = (timezone.now() + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    later = soon + timedelta(days=7)
    schedule_meeting(conversation, "Demo", soon.isoformat(), None, None)
    ScheduledEvent.objects.create(
        title="Follow-up", start=later, contact=conversation.contact, conversation=conversation,
        created_by="agent", status=ScheduledEvent.Status.CONFIRMED,
    )  # fmt: skip

    assert [m["title"] for m in api.get("/api/v1/meetings").json()["results"]] == ["Demo", "Follow-up"]
    window = {"start_from": (soon + timedelta(days=1)).isoformat()}
    assert [m["title"] for m in api.get("/api/v1/meetings", window).json()["results"]] == ["Follow-up"]
    assert [m["title"] for m in api.get("/api/v1/meetings", {"status": "proposed"}).json()["results"]] == ["Demo"]
    meeting = ScheduledEvent.objects.get(title="Demo")
    assert api.get(f"/api/v1/meetings/{meeting.pk}").json()["start"].startswith(soon.date().isoformat())
    assert error_of(api.get(f"/api/v1/meetings/{MISSING}"), 404)["code"] == "not_found"


# --- Events ------------------------------------------------------------------------------------------


def test_the_event_feed_is_read_by_cursor_as_envelopes(api):
    conversation = open_web("api-events-0001", "Hola, quiero información")
    inbox.send(conversation, "Claro", sender=Sender.ASSISTANT)
    other = open_web("api-events-0002")
    expected = list(Event.objects.order_by("pk").values_list("pk", flat=True))

    seen, after = [], 0
    while True:
        page = api.get("/api/v1/events", {"after": after, "limit": 2}).json()
        if not page["events"]:
            assert page["next"] == after
            break
        seen += page["events"]
        after = page["next"]
    assert [item["id"] for item in seen] == expected
    received = next(item for item in seen if item["type"] == "message_received")
    assert set(received) == {"id", "type", "version", "occurred_at", "conversation_id", "contact_id", "channel", "data"}
    assert received["channel"] == "web" and received["data"]["text"] == "Hola, quiero información"

    only = api.get("/api/v1/events", {"type": "message_sent"}).json()["events"]
    assert [item["data"]["seq"] for item in only] == [2]
    theirs = api.get("/api/v1/events", {"conversation": str(other.pk)}).json()["events"]
    assert theirs and {item["conversation_id"] for item in theirs} == {str(other.pk)}
    assert "after" in error_of(api.get("/api/v1/events", {"after": "last"}), 400)["fields"]
    assert "limit" in error_of(api.get("/api/v1/events", {"limit": 1000}), 400)["fields"]


def test_the_feed_leaves_out_personal_data_unless_the_token_takes_it(api):
    open_web("api-events-0010", "Mi correo es lucia@example.com")
    plain = Api(make_token("BI", personal_data=False))

    texts = [item["data"].get("text") for item in plain.get("/api/v1/events").json()["events"]]
    assert texts and set(texts) == {None}
    assert "lucia@example.com" in str(api.get("/api/v1/events").json())


def test_the_feed_holds_back_events_younger_than_the_delay(api, settings):
    settings.TALIA_API_EVENTS_DELAY_S = 60
    open_web("api-events-0020")
    assert api.get("/api/v1/events").json() == {"events": [], "next": 0}
    Event.objects.update(created=timezone.now() - timedelta(minutes=2))
    assert len(api.get("/api/v1/events").json()["events"]) == Event.objects.count()


# --- Sending messages --------------------------------------------------------------------------------


def test_a_message_is_sent_into_an_open_web_chat_and_refused_once_it_is_closed(api, agent):
    conversation = open_web("api-send-0001")

    sent = api.post(
        "/api/v1/messages",
        {"conversation_id": str(conversation.pk), "text": "Hola, soy Ana", "sender": "agent", "agent_id": agent.pk},
    )
    assert sent.status_code == 201, sent.content
    body = sent.json()
    message = Message.objects.get(pk=body["id"])
    assert (message.seq, message.sender, message.agent, message.text, message.direction) == (
        2,
        "agent",
        agent,
        "Hola, soy Ana",
        "outbound",
    )
    assert body["seq"] == 2 and body["delivery_status"] == "sent"  # the web chat is delivered by its socket
    system = api.post(
        "/api/v1/messages", {"conversation_id": str(conversation.pk), "text": "Aviso", "sender": "system"}
    )
    assert system.status_code == 201 and system.json()["seq"] == 3 and system.json()["agent_id"] is None
    audit = ApiAuditEntry.objects.order_by("at", "pk").first()
    assert audit is not None
    assert (audit.action, audit.object_id, audit.summary) == ("send_message", str(conversation.pk), "sender: agent")

    state.close_conversation(conversation, ended_by="agent", reason="hecho")
    closed = error_of(
        api.post("/api/v1/messages", {"conversation_id": str(conversation.pk), "text": "¿Sigues?", "sender": "system"}),
        409,
    )
    assert closed == {"code": "conversation_closed", "message": "The conversation is closed."}
    assert Message.objects.filter(conversation=conversation).count() == 3
    assert ApiAuditEntry.objects.count() == 2


def test_a_sent_message_reaches_the_visitors_widget_after_commit(
    api, agent, listen, django_capture_on_commit_callbacks
):
    conversation = open_web("api-send-0003")
    widget = listen(conversation.group_name)

    with django_capture_on_commit_callbacks(execute=True):
        sent = api.post(
            "/api/v1/messages",
            {
                "conversation_id": str(conversation.pk),
                "text": "Te atiende Ana",
                "sender": "agent",
                "agent_id": agent.pk,
            },
        )

    assert sent.status_code == 201
    pushed = widget.receive()
    assert pushed is not None and pushed["type"] == "message.new"
    assert (pushed["message"]["id"], pushed["message"]["seq"], pushed["message"]["text"]) == (
        sent.json()["id"],
        2,
        "Te atiende Ana",
    )
    assert pushed["message"]["agent_name"] == "Ana"


def test_a_malformed_message_says_what_is_wrong(api, agent, django_user_model):
    conversation = open_web("api-send-0002")
    target = str(conversation.pk)
    customer = django_user_model.objects.create_user("not-an-agent")

    def refused(body):
        return error_of(api.post("/api/v1/messages", body), 400)["fields"]

    assert set(refused({"text": "Hola", "sender": "agent"})) == {"conversation_id"}
    assert set(refused({"conversation_id": "nope", "text": "Hola", "sender": "agent"})) == {"conversation_id"}
    assert set(refused({"conversation_id": target, "text": "", "sender": "agent"})) == {"text"}
    assert set(refused({"conversation_id": target, "text": "x" * 4001, "sender": "agent"})) == {"text"}
    assert set(refused({"conversation_id": target, "text": "Hola", "sender": "assistant"})) == {"sender"}
    assert set(refused({"conversation_id": target, "text": "Hola", "sender": "system", "agent_id": agent.pk})) == {
        "agent_id"
    }
    assert refused({"conversation_id": target, "text": "Hola", "sender": "agent", "agent_id": customer.pk}) == {
        "agent_id": ["No such active agent."]
    }
    missing = error_of(
        api.post("/api/v1/messages", {"conversation_id": MISSING, "text": "Hola", "sender": "system"}), 404
    )
    assert missing["message"] == "No such conversation."
    assert Message.objects.filter(conversation=conversation).count() == 1
    assert not ApiAuditEntry.objects.exists()


# --- Schema ------------------------------------------------------------------------------------------


def test_the_api_is_in_the_schema_for_supervisors_with_its_bearer_scheme(client, admin_client):
    anonymous = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    supervisor = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    ours = [path for path in supervisor["paths"] if path.startswith("/api/v1/") and "whatsapp" not in path]

    assert not [path for path in anonymous["paths"] if path in ours]
    assert {"/api/v1/contacts/{id}/erase", "/api/v1/events", "/api/v1/messages", "/api/v1/leads/{id}/move"} <= set(ours)
    assert supervisor["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    erase = supervisor["paths"]["/api/v1/contacts/{id}/erase"]["post"]
    assert erase["security"] == [{"apiToken": []}] and erase["summary"].startswith("Erase")
