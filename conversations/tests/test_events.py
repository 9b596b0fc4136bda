"""The events registry: declarations are checked when an event is recorded, unknown names fail loudly.

The flow test through every app that declares events lives in talia/tests/test_events.py (the core's
tests import no other app).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from conversations import events, inbox
from conversations.events import EventRegistry, EventSpec, spec
from conversations.models import Event


def test_the_core_declares_its_events_at_startup():
    declared = {event.name for event in events.events.all()}
    assert {event.name for event in events.CORE_EVENTS} <= declared


def test_an_undeclared_event_fails_loudly(db):
    conversation = inbox.receive("web", "events-unknown-0001", "Hola").conversation
    before = Event.objects.count()

    with pytest.raises(ImproperlyConfigured, match="not declared"):
        events.emit("never_declared", conversation=conversation)
    with pytest.raises(ImproperlyConfigured, match="not declared"):
        events.emit(spec("made_up", "Never declared"), conversation=conversation)

    assert Event.objects.count() == before


@pytest.mark.parametrize(
    "payload",
    [
        {},  # missing both keys
        {"agent_ids": [1], "extra": True},  # an undeclared key
        {"agent_id": 1},  # the wrong key
    ],
)
def test_a_payload_that_differs_from_the_declaration_fails(db, payload):
    conversation = inbox.receive("web", "events-payload-0001", "Hola").conversation
    before = Event.objects.count()

    with pytest.raises(ValueError, match="handed_back"):
        events.emit(events.HANDED_BACK, conversation=conversation, **payload)

    assert Event.objects.count() == before


def test_optional_keys_may_be_left_out_or_given(db):
    conversation = inbox.receive("web", "events-optional-0001", "Hola").conversation
    details: dict[str, Any] = {"full_name": "Lucía", "email": "lucia@example.com", "phone": "", "company": ""}

    events.emit(events.LEAD_CAPTURED, conversation=conversation, **details)
    events.emit(events.LEAD_CAPTURED, conversation=conversation, **details, card_id=7)

    assert Event.objects.filter(name="lead_captured").count() == 2


def test_a_spec_that_differs_from_its_declaration_is_refused(db):
    changed = EventSpec("handed_back", "Handed back", frozenset({"agents"}))
    with pytest.raises(ImproperlyConfigured, match="differs"):
        events.emit(changed, agents=[])


def test_a_name_is_declared_once():
    registry = EventRegistry()
    first = spec("thing_done", "Thing done", "a")
    registry.declare(first)
    registry.declare(spec("thing_done", "Thing done", "a"))  # the same declaration again: harmless

    with pytest.raises(ImproperlyConfigured, match="already declared"):
        registry.declare(spec("thing_done", "Thing done", "b"))
    assert registry.get("thing_done") == first
    assert registry.label("thing_done") == "Thing done"
    assert registry.label("older_name") == "older_name"


def test_the_admin_filters_events_by_name_and_labels_them_from_the_registry(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root-events", "root@example.com", "x"))
    inbox.receive("web", "events-admin-0001", "Hola")
    url = reverse("admin:conversations_event_changelist")

    everything = client.get(url).content.decode()
    received = client.get(url, {"name": "message_received"})

    assert "?name=conversation_opened" in everything and "?name=message_received" in everything  # the filter
    assert received.status_code == 200
    assert list(received.context["cl"].queryset.values_list("name", flat=True)) == ["message_received"]
    assert "Message received" in received.content.decode()  # the declared description
