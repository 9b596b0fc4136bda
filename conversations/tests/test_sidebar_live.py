"""The contact sidebar follows what the assistant captures (issue #17, "The agent's view of the contact"):
its tools write through the one lead writer, the consent functions and the leads pipeline, each of which
pushes `contact.changed` to the staff viewing the contact; the page then reads `GET …/contact`.

The turns here are real (turns.run_turn with the offline engine, the tools from the registry)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import inbox, realtime
from conversations.assistant import turns
from conversations.models import Conversation
from conversations.tests.console_helpers import console_socket, next_of, queued, ready, signed_in
from leads.models import LeadCard

SESSION = "sidebar-live-0001"


def visitor_says(text: str, session: str = SESSION) -> Conversation:
    """The visitor writes; the assistant's real turn runs (offline engine) and its tools act."""
    received = inbox.receive("web", session, text, locale="es")
    turns.run_turn(received.message.pk)
    return received.conversation


def sidebar(user: Any, conversation: Conversation) -> Any:
    return signed_in(user).get(f"/console/api/conversations/{conversation.pk}/contact")


@pytest.mark.django_db(transaction=True)
async def test_the_agents_open_sidebar_hears_what_the_assistant_captures(agent):
    conversation = await sync_to_async(visitor_says)("Hola, buenas")  # the assistant asks for consent
    socket = await ready(await sync_to_async(console_socket)(agent))
    await socket.send_json_to({"type": "watch", "conversation_id": str(conversation.pk)})
    assert (await next_of(socket, "watching"))["conversation_id"] == str(conversation.pk)

    await sync_to_async(visitor_says)("Vale. Soy Ana Pérez y trabajo en Acme Ibérica")

    changed = await next_of(socket, "contact.changed")
    assert changed == {"type": "contact.changed", "contact_id": str(conversation.contact_id)}
    data = (await sync_to_async(sidebar)(agent, conversation)).json()
    assert data["contact"]["full_name"] == "Ana Pérez" and data["contact"]["company"] == "Acme Ibérica"
    assert data["contact"]["name"] == "Ana Pérez" and data["consent"] == "granted"

    # A detail alone (no consent answer with it): the lead writer's own push.
    while not await socket.receive_nothing(timeout=0.5):
        await socket.receive_json_from()
    await sync_to_async(visitor_says)("ana.perez@example.com")
    assert (await next_of(socket, "contact.changed"))["contact_id"] == str(conversation.contact_id)
    data = (await sync_to_async(sidebar)(agent, conversation)).json()
    assert data["contact"]["email"] == "ana.perez@example.com"
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_meeting_the_assistant_books_reaches_the_sidebar_with_the_lead_card(agent):
    conversation = await sync_to_async(visitor_says)("Hola", session="sidebar-live-0002")
    socket = await ready(await sync_to_async(console_socket)(agent))
    await socket.send_json_to({"type": "watch", "conversation_id": str(conversation.pk)})
    await next_of(socket, "watching")

    await sync_to_async(visitor_says)("Quiero una reunión mañana a las 11", session="sidebar-live-0002")

    assert (await next_of(socket, "contact.changed"))["contact_id"] == str(conversation.contact_id)
    leads = (await sync_to_async(sidebar)(agent, conversation)).json()["panels"]["leads"]
    [meeting] = leads["meetings"]
    assert meeting["status"] == "proposed" and meeting["start_label"] and meeting["start_input"].endswith("T11:00")
    assert meeting["confirm_url"] == f"/console/meetings/{meeting['id']}/confirm"
    card = await sync_to_async(LeadCard.objects.get)(contact_id=conversation.contact_id)
    assert leads["card"] == {"stage": card.stage, "stage_label": leads["card"]["stage_label"], "value": None}
    assert leads["back"] == f"/console/conversations/{conversation.pk}/"
    await socket.disconnect()


def once(callbacks: list[Any]) -> int:
    """How many once-per-transaction pushes were registered (each sends its envelopes when it runs)."""
    return sum(isinstance(callback, realtime._OnceAfterCommit) for callback in callbacks)


def test_one_push_per_change_and_none_when_nothing_changed(agent, listen, django_capture_on_commit_callbacks):
    conversation = inbox.receive("web", "sidebar-live-0003", "Hola", assistant_turn=False).conversation
    staff = listen(realtime.staff_contact_group(conversation.contact_id))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        realtime.publish_contact_changed(conversation.contact_id)
        realtime.publish_contact_changed(conversation.contact_id)  # the same transaction
    assert once(callbacks) == 1
    assert staff.receive()["type"] == "contact.changed"

    # An agent's edit that changes nothing writes nothing and tells nobody.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = signed_in(agent).patch(
            f"/console/api/conversations/{conversation.pk}/contact",
            data=json.dumps({"company": "Acme"}),
            content_type="application/json",
        )
    assert response.status_code == 200 and once(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = signed_in(agent).patch(
            f"/console/api/conversations/{conversation.pk}/contact",
            data=json.dumps({"company": "Acme"}),
            content_type="application/json",
        )
    assert again.status_code == 200 and again.json()["changed"] == {} and callbacks == []


@pytest.mark.django_db(transaction=True)
async def test_an_agent_watching_another_conversation_of_the_contact_hears_the_change(agent):
    first = await sync_to_async(visitor_says)("Hola", session="sidebar-live-0004")
    # The same person on WhatsApp: another conversation of the same contact.
    second = (await sync_to_async(inbox.receive)("whatsapp", "+34600555444", "Hola", assistant_turn=False)).conversation
    await sync_to_async(Conversation.objects.filter(pk=second.pk).update)(contact=first.contact_id)
    socket = await ready(await sync_to_async(console_socket)(agent))
    await socket.send_json_to({"type": "watch", "conversation_id": str(second.pk)})
    await next_of(socket, "watching")

    await sync_to_async(visitor_says)("Sí, acepto", session="sidebar-live-0004")  # consent, in the web chat

    assert (await next_of(socket, "contact.changed"))["contact_id"] == str(first.contact_id)
    assert (await sync_to_async(sidebar)(agent, second)).json()["consent"] == "granted"
    await socket.disconnect()


def test_only_who_may_open_the_conversation_reads_its_sidebar(desk, people):
    for_support = queued("sidebar-live-0005", reason="factura")

    assert sidebar(desk["bruno"], for_support).status_code == 200
    refused = sidebar(desk["ana"], for_support)  # Ventas: not her queue
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert sidebar(people["visitor"], for_support).status_code == 403
