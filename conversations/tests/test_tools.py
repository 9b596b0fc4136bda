"""The core tools and the executor: bad values become error outputs, every call is stored."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from conversations import events, inbox
from conversations.assistant import turns
from conversations.assistant.base import ToolInvocation
from conversations.assistant.executor import ToolExecutor
from conversations.models import ConversationStatus, Event, HandoffRequest, ToolCall
from conversations.registry import Tool, ToolRegistry, tools


@pytest.fixture
def run(lucia):
    claimed = turns.claim_run(lucia.message.pk)
    assert claimed is not None
    return claimed


@pytest.fixture
def call(run):
    executor = ToolExecutor(run)
    counter = iter(range(1000))

    def invoke(name: str, **arguments):
        return json.loads(executor(ToolInvocation(f"call_{next(counter)}", name, json.dumps(arguments))))

    return invoke


def test_core_tools_are_registered_with_strict_schemas():
    assert {
        "record_consent",
        "set_full_name",
        "set_email",
        "set_phone_number",
        "set_company_name",
        "request_human",
    } <= {tool.name for tool in tools.all()}
    for tool in tools.all():
        assert tool.parameters["additionalProperties"] is False
        assert sorted(tool.parameters["required"]) == sorted(tool.parameters["properties"])


def test_a_non_strict_schema_is_refused_at_registration():
    loose = {"type": "object", "properties": {"x": {"type": "string"}}, "required": []}
    with pytest.raises(ImproperlyConfigured, match="additionalProperties"):
        ToolRegistry().register(Tool("loose", "", loose, lambda conversation, **kw: {}))


def test_personal_data_waits_for_consent(call, lucia):
    refused = call("set_email", email="lucia@example.com")

    assert refused["ok"] is False
    assert "consent" in refused["error"]
    lucia.contact.refresh_from_db()
    assert lucia.contact.email == ""


@override_settings(TALIA_CONSENT_VERSION="v-test")
def test_consent_is_stored_with_time_and_text_version(call, lucia):
    assert call("record_consent", granted=True)["consent"] == "granted"

    lucia.contact.refresh_from_db()
    assert lucia.contact.consent_given_at is not None
    assert lucia.contact.consent_text_version == "v-test"


def test_declined_consent_stores_nothing(call, lucia):
    assert call("record_consent", granted=False)["consent"] == "declined"
    lucia.contact.refresh_from_db()
    assert not lucia.contact.has_consented


@pytest.mark.parametrize(
    ("tool", "argument", "given", "stored_field", "stored"),
    [
        ("set_full_name", "full_name", "  Lucía   Pérez ", "full_name", "Lucía Pérez"),
        ("set_email", "email", "Lucia@Example.COM", "email", "Lucia@example.com"),
        ("set_phone_number", "phone_number", "600 123 456", "phone", "+34600123456"),
        ("set_phone_number", "phone_number", "+1 (415) 555-2671", "phone", "+14155552671"),
        ("set_company_name", "company", "Acme  Ibérica", "company", "Acme Ibérica"),
    ],
)
def test_valid_values_are_normalised_and_stored(call, lucia, tool, argument, given, stored_field, stored):
    call("record_consent", granted=True)

    output = call(tool, **{argument: given})

    assert output["ok"] is True
    lucia.contact.refresh_from_db()
    assert getattr(lucia.contact, stored_field) == stored


@pytest.mark.parametrize(
    ("tool", "argument", "given"),
    [
        ("set_full_name", "full_name", "1234"),
        ("set_email", "email", "lucia@"),
        ("set_phone_number", "phone_number", "12"),
        ("set_company_name", "company", "   "),
    ],
)
def test_bad_values_come_back_as_errors_the_model_can_act_on(call, lucia, run, tool, argument, given):
    call("record_consent", granted=True)

    output = call(tool, **{argument: given})

    assert output["ok"] is False
    assert output["error"]
    stored = ToolCall.objects.get(run=run, name=tool)
    assert stored.status == ToolCall.Status.ERROR
    assert stored.arguments == {argument: given}


def test_lead_captured_is_recorded_once(call, lucia):
    call("record_consent", granted=True)
    call("set_full_name", full_name="Lucía Pérez")
    assert not Event.objects.filter(name=events.LEAD_CAPTURED.name).exists()

    assert call("set_email", email="lucia@example.com")["lead_captured"] is True
    assert "lead_captured" not in call("set_phone_number", phone_number="+34600123456")

    event = Event.objects.get(name=events.LEAD_CAPTURED.name)
    assert event.contact_id == lucia.contact.pk
    assert event.payload["email"] == "lucia@example.com"


def test_request_human_queues_the_conversation_once(call, lucia):
    assert call("request_human", reason="Wants pricing for 40 seats")["status"] == "queued"
    again = call("request_human", reason="Still wants a person")

    lucia.conversation.refresh_from_db()
    assert lucia.conversation.status == ConversationStatus.QUEUED
    handoff = HandoffRequest.objects.get(conversation=lucia.conversation)
    assert (handoff.requested_by, handoff.reason) == ("assistant", "Wants pricing for 40 seats")
    assert again["ok"] is False


def test_unknown_tools_and_malformed_arguments_are_errors_not_crashes(run):
    executor = ToolExecutor(run)

    unknown = json.loads(executor(ToolInvocation("call_a", "delete_everything", "{}")))
    malformed = json.loads(executor(ToolInvocation("call_b", "set_email", "{not json")))
    wrong = json.loads(executor(ToolInvocation("call_c", "set_email", '{"mail": "x@y.z"}')))

    assert [unknown["ok"], malformed["ok"], wrong["ok"]] == [False, False, False]
    assert "delete_everything" in unknown["error"]
    assert ToolCall.objects.filter(run=run, status=ToolCall.Status.ERROR).count() == 3


def test_a_call_id_already_executed_is_not_executed_again(run, lucia):
    executor = ToolExecutor(run)
    first = executor(ToolInvocation("call_same", "request_human", '{"reason": "first"}'))

    second = executor(ToolInvocation("call_same", "request_human", '{"reason": "first"}'))

    assert json.loads(second) == json.loads(first)
    assert ToolCall.objects.filter(run=run, call_id="call_same").count() == 1
    assert HandoffRequest.objects.count() == 1


def test_messages_before_the_assistant_are_answered_as_a_single_turn(db):
    inbox.receive("web", "session-burst-0001", "Hola")
    second = inbox.receive("web", "session-burst-0001", "¿Hay alguien?")
    first_message = second.conversation.messages.get(seq=1)

    skipped = turns.run_turn(first_message.pk)

    assert skipped is not None
    assert skipped.status == "skipped"
    assert "newer message" in skipped.error
