"""The published JSON Schemas: generated, current, one per declared event, and true of real events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone
from jsonschema import Draft202012Validator, FormatChecker

from conversations import inbox, state
from conversations.assistant.tools import give_consent
from conversations.events import events, spec
from conversations.leadfields import write_lead_fields
from conversations.models import Event, Sender
from leads import tools as lead_tools
from leads.models import LeadMovement
from talia.integrations import envelopes, schemas
from talia.integrations.management.commands.event_schemas import DEFAULT_DIRECTORY
from talia.integrations.sinks import personal_keys

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # jsonschema checks date-time only with an optional package; an aware ISO 8601 timestamp is what we send.
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def validator(event_type: str) -> Draft202012Validator:
    path = DEFAULT_DIRECTORY / "schemas" / f"{event_type}.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document, format_checker=FORMATS)


def test_the_committed_files_are_current() -> None:
    call_command("event_schemas", "--check")


def test_check_fails_on_a_stale_or_leftover_file_and_writing_fixes_it(tmp_path: Path) -> None:
    call_command("event_schemas", "--dir", str(tmp_path))
    call_command("event_schemas", "--check", "--dir", str(tmp_path))
    (tmp_path / "schemas" / "message_received.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "schemas" / "no_longer_declared.json").write_text("{}\n", encoding="utf-8")

    with pytest.raises(CommandError, match="message_received.json.*no_longer_declared.json"):
        call_command("event_schemas", "--check", "--dir", str(tmp_path))

    call_command("event_schemas", "--dir", str(tmp_path))
    call_command("event_schemas", "--check", "--dir", str(tmp_path))
    assert not (tmp_path / "schemas" / "no_longer_declared.json").exists()


def test_every_declared_event_has_a_valid_schema_and_a_row_in_the_table() -> None:
    declared = [event.name for event in events.all()]
    assert {"message_received", "lead_created", "webchat_started", "call_started", "retention_applied"} <= set(declared)
    table = (DEFAULT_DIRECTORY / "types.md").read_text(encoding="utf-8")
    for name in declared:
        document = validator(name).schema
        assert document["properties"]["type"] == {"const": name}
        assert f"| `{name}` |" in table
    assert sorted(path.stem for path in (DEFAULT_DIRECTORY / "schemas").glob("*.json")) == sorted(declared)


def test_a_payload_key_without_a_type_is_refused() -> None:
    with pytest.raises(schemas.UntypedKey, match="'mystery'"):
        schemas.schema(spec("something_happened", "Something happened", "mystery"))


def test_personal_keys_are_optional_and_the_rest_required() -> None:
    lead = next(event for event in events.all() if event.name == "lead_captured")
    data = schemas.schema(lead)["properties"]["data"]
    assert data["required"] == []  # every lead field is personal (the company too, as retention says)
    assert set(data["properties"]) == {"full_name", "email", "phone", "company", "card_id"}
    assert data["additionalProperties"] is False
    # A key the retention policy clears (the handoff's free-text reason) is personal for sinks too.
    handoff = next(event for event in events.all() if event.name == "handoff_requested")
    data = schemas.schema(handoff)["properties"]["data"]
    assert data["required"] == ["requested_by"]
    assert set(data["properties"]) == {"requested_by", "reason"}


@pytest.fixture
def agent(db: None) -> Any:
    user = get_user_model().objects.create_user(username="ana", first_name="Ana")
    user.groups.add(Group.objects.get_or_create(name="agents")[0])
    return user


@pytest.mark.django_db
def test_events_from_real_flows_match_their_schemas(agent: Any) -> None:
    hello = inbox.receive("web", "session-schemas-0001", "Hola, soy Lucía", locale="es", assistant_turn=False)
    conversation = hello.conversation
    with transaction.atomic():
        inbox.send(conversation, "¡Hola Lucía! ¿En qué te ayudo?", sender=Sender.ASSISTANT)
    give_consent(hello.contact.pk)
    write_lead_fields(conversation, {"full_name": "Lucía Pérez", "email": "lucia@example.com"})
    lead_tools.close_lead(conversation, "Quiere un plan para 20 personas", None, 1200)
    meeting, _ = lead_tools.book(
        conversation,
        title="Demo",
        start=timezone.now() + timedelta(days=3),
        duration_minutes=30,
        notes="",
        message=None,
        created_by=LeadMovement.MovedBy.ASSISTANT,
    )
    lead_tools.change_meeting(meeting, title="Demo del plan", changed_by=LeadMovement.MovedBy.AGENT)
    state.request_handoff(conversation, requested_by="contact", reason="quiero hablar con una persona")
    state.claim_conversation(conversation, agent)
    with transaction.atomic():
        inbox.send(conversation, "Soy Ana, te ayudo yo", sender=Sender.AGENT, agent=agent)
    state.close_conversation(conversation, ended_by="agent", reason="resolved")

    rows = list(Event.objects.order_by("id"))
    assert {row.name for row in rows} >= {
        "conversation_opened",
        "message_received",
        "message_sent",
        "lead_captured",
        "lead_created",
        "meeting_scheduled",
        "meeting_updated",
        "handoff_requested",
        "agent_assigned",
        "conversation_closed",
    }
    personal = envelopes.build(rows, personal_data=True)
    plain = envelopes.build(rows, personal_data=False)
    for envelope in [*personal, *plain]:
        errors = [error.message for error in validator(envelope.type).iter_errors(envelope.as_dict())]
        assert errors == [], (envelope.type, errors)
    for envelope in plain:
        assert not set(envelope.data) & personal_keys(envelope.type), envelope
    assert "reason" not in next(e for e in plain if e.type == "handoff_requested").data
    assert "reason" in next(e for e in personal if e.type == "handoff_requested").data
    # The personal envelopes do carry what the plain ones leave out.
    lead = next(envelope for envelope in personal if envelope.type == "lead_captured")
    assert (lead.data["full_name"], lead.data["email"]) == ("Lucía Pérez", "lucia@example.com")
    assert [e.data.get("text") for e in personal if e.type == "message_received"] == ["Hola, soy Lucía"]


@pytest.mark.django_db
def test_a_wrongly_typed_event_fails_its_schema() -> None:
    hello = inbox.receive("web", "session-schemas-0002", "Hola", locale="es", assistant_turn=False)
    received = Event.objects.get(conversation=hello.conversation, name="message_received")
    received.payload["seq"] = "one"
    envelope = envelopes.build([received], personal_data=False)[0].as_dict()
    assert [error.json_path for error in validator("message_received").iter_errors(envelope)] == ["$.data.seq"]
    envelope["data"] = {**received.payload, "seq": 1, "surprise": True}
    assert not validator("message_received").is_valid(envelope)
    envelope = {**envelope, "data": {"message_id": received.payload["message_id"], "seq": 1}, "occurred_at": "now"}
    assert not validator("message_received").is_valid(envelope)


@pytest.mark.django_db
def test_web_sessions_and_phone_calls_match_their_schemas() -> None:
    from channels_voice import services as voice
    from channels_web import services as web

    visitor = web.Visitor(session_id="session-schemas-web-0003", origin="https://example.com", locale="es")
    web.open_session(visitor)
    web.post_message(visitor, "Hola")
    web.close_session(visitor, "visitor")
    call = {"CallSid": "CA" + "1" * 32, "From": "+34600111222", "To": "+34910000000"}
    voice.start_call(call)
    voice.apply_status(voice.parse_status({**call, "CallStatus": "completed", "CallDuration": "42"}))

    rows = list(Event.objects.order_by("id"))
    assert {"webchat_started", "session_closed", "call_started", "call_completed"} <= {row.name for row in rows}
    for personal_data in (True, False):
        for envelope in envelopes.build(rows, personal_data=personal_data):
            errors = [error.message for error in validator(envelope.type).iter_errors(envelope.as_dict())]
            assert errors == [], (envelope.type, errors)
            if not personal_data:
                assert not set(envelope.data) & personal_keys(envelope.type), envelope
    started = Event.objects.get(name="call_started")
    assert started.payload["from_number"] == "+34600111222"  # kept in the row, left out of plain envelopes
