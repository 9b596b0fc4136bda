"""Supervision: the monitor, internal notes and whispers, who may see them, and agent presence."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from conversations import inbox, state
from conversations.console import presence
from conversations.models import InternalNote, Sender
from conversations.tests.console_helpers import (
    HOST,
    api,
    console_socket,
    next_of,
    ready,
    signed_in,
    staff_socket,
)
from talia.asgi import application
from talia.redis_client import get_redis

SESSION = "supervised-session-01"


@pytest.fixture
def with_bruno(make_agent):
    """A web conversation that Bruno (another agent) has claimed."""
    received = inbox.receive("web", SESSION, "Hola, tengo un problema con la factura")
    state.request_handoff(received.conversation, requested_by="contact", reason="The visitor asked for a person.")
    bruno = make_agent("bruno", first_name="Bruno")
    state.claim_conversation(received.conversation, bruno)
    return received.conversation, bruno


@pytest.mark.parametrize(
    ("who", "monitor", "read_notes", "add_note", "whisper"),
    [
        ("anonymous", 302, 403, 403, 403),
        ("visitor", 403, 403, 403, 403),
        ("agent", 403, 403, 403, 403),  # an agent, but the conversation is Bruno's
        ("staff", 200, 200, 201, 201),
    ],
)
def test_authorisation_matrix_for_supervision(people, with_bruno, who, monitor, read_notes, add_note, whisper):
    conversation, _bruno = with_bruno
    client = signed_in(people[who])

    assert client.get("/console/monitor/").status_code == monitor
    assert client.get(f"/console/api/conversations/{conversation.pk}/notes").status_code == read_notes
    noted = api(client, conversation, "notes", {"text": "Cliente VIP"})
    whispered = api(client, conversation, "whisper", {"text": "Ofrécele el descuento"})

    assert (noted.status_code, whispered.status_code) == (add_note, whisper)
    for refused in (r for r in (noted, whispered) if r.status_code >= 400):
        assert "error" in refused.json()
    assert InternalNote.objects.count() == (2 if who == "staff" else 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("who", "code"), [("anonymous", 4401), ("visitor", 4403), ("agent", 4403)])
async def test_the_monitor_socket_is_for_supervisors_only(people, who, code):
    socket = await sync_to_async(staff_socket)(people[who], "/ws/monitor/")
    await socket.connect()

    assert (await socket.receive_output(timeout=5))["code"] == code
    await socket.disconnect()


def test_the_assigned_agent_reads_and_adds_notes(with_bruno):
    conversation, bruno = with_bruno
    client = signed_in(bruno)

    added = api(client, conversation, "notes", {"text": "  Revisar la factura 2026-118  "})
    listed = client.get(f"/console/api/conversations/{conversation.pk}/notes")

    assert added.status_code == 201
    assert added.json()["note"]["text"] == "Revisar la factura 2026-118"
    assert [n["text"] for n in listed.json()["notes"]] == ["Revisar la factura 2026-118"]
    assert listed.json()["notes"][0]["author_name"] == "Bruno"


@pytest.mark.parametrize("text", ["", "   ", "x" * 4001])
def test_a_note_needs_text(with_bruno, text):
    conversation, bruno = with_bruno

    response = api(signed_in(bruno), conversation, "notes", {"text": text})

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["text"]
    assert not InternalNote.objects.exists()


def test_an_agent_cannot_whisper(with_bruno, make_agent):
    conversation, bruno = with_bruno

    response = api(signed_in(bruno), conversation, "whisper", {"text": "Hola"})

    assert response.status_code == 403


def test_a_whisper_needs_an_agent_on_the_conversation(people):
    received = inbox.receive("web", SESSION, "Hola")

    response = api(signed_in(people["staff"]), received.conversation, "whisper", {"text": "¿Quién lo lleva?"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_agent"


def visitor_socket(session: str = SESSION) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/webchat/?session_id={session}", headers=HOST)


@pytest.mark.django_db(transaction=True)
async def test_notes_reach_the_team_and_never_the_visitor(with_bruno):
    conversation, bruno = with_bruno
    visitor = await ready(visitor_socket())
    agent = await ready(await sync_to_async(console_socket)(bruno))
    await agent.send_json_to({"type": "watch", "conversation_id": str(conversation.pk)})
    await next_of(agent, "watching")
    bruno_client = await sync_to_async(signed_in)(bruno)

    await sync_to_async(api)(bruno_client, conversation, "notes", {"text": "Nota interna: no ofrecer reembolso"})
    await sync_to_async(inbox.send)(conversation, "Ya lo miro", sender=Sender.AGENT, agent=bruno)

    note = await next_of(agent, "note.added")
    assert (note["note"]["kind"], note["note"]["text"]) == ("note", "Nota interna: no ofrecer reembolso")
    # The visitor's next frame is the agent's message: the note was never sent to them.
    assert (await visitor.receive_json_from(timeout=5))["message"]["text"] == "Ya lo miro"
    history = await sync_to_async(Client().get)(f"/api/webchat/history/{SESSION}")
    assert history.status_code == 200
    assert "Nota interna" not in history.content.decode()
    for socket in (visitor, agent):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_whisper_reaches_the_agent_anywhere_in_the_console(with_bruno, people):
    conversation, bruno = with_bruno
    # Bruno is on the queue page: his socket watches no conversation.
    agent = await ready(await sync_to_async(console_socket)(bruno))
    boss = await sync_to_async(signed_in)(people["staff"])

    response = await sync_to_async(api)(boss, conversation, "whisper", {"text": "Ofrécele el 10 %"})

    assert response.status_code == 201
    event = await next_of(agent, "note.added")
    assert event["conversation_id"] == str(conversation.pk)
    assert event["note"] | {"id": None, "created": None} == {
        "id": None,
        "created": None,
        "conversation_id": str(conversation.pk),
        "kind": "whisper",
        "author_name": "Berta",
        "recipient_name": "Bruno",
        "text": "Ofrécele el 10 %",
    }
    await agent.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_monitor_sees_agents_come_and_go_and_every_message(people, make_agent):
    monitor = await ready(await sync_to_async(staff_socket)(people["staff"], "/ws/monitor/"))
    ana = people["agent"]

    agent = await ready(await sync_to_async(console_socket)(ana))
    online = await next_of(monitor, "agents.online")
    received = await sync_to_async(inbox.receive)("web", "monitored-session-01", "¿Abren el sábado?")
    opened = await next_of(monitor, "conversation.opened")
    message = await next_of(monitor, "message.new")
    await agent.disconnect()
    offline = await next_of(monitor, "agents.online")

    assert online["agents"] == [{"id": ana.pk, "name": "Ana", "state": "online"}]
    assert opened["conversation_id"] == str(received.conversation.pk)
    assert message["message"]["text"] == "¿Abren el sábado?"
    assert offline["agents"] == []
    await monitor.send_json_to({"type": "watch", "conversation_id": str(received.conversation.pk)})
    assert (await monitor.receive_json_from(timeout=5))["error"]["code"] == "read_only"
    await monitor.disconnect()


def test_the_monitor_page_shows_the_queue_the_agents_and_every_open_conversation(people, with_bruno):
    conversation, _bruno = with_bruno
    waiting = inbox.receive("web", "monitored-session-02", "<b>Quiero hablar con alguien</b>").conversation
    state.request_handoff(waiting, requested_by="contact")
    inbox.receive("whatsapp", "+34600111222", "Hola desde WhatsApp")
    presence.touch(people["agent"].pk, "specific.channel-1")

    page = signed_in(people["staff"]).get("/console/monitor/", HTTP_ACCEPT_LANGUAGE="en")
    body = page.content.decode()

    assert page.context["queue_length"] == 1
    assert (page.context["open_count"], page.context["with_agents"], page.context["with_assistant"]) == (3, 1, 1)
    assert [agent.get_username() for agent, _count in page.context["agents_online"]] == ["ana"]
    rows = [c.pk for c in page.context["conversations"]]
    assert rows[:2] == [waiting.pk, conversation.pk]  # the queue first, then conversations with an agent
    assert "Hola desde WhatsApp" in body and "tengo un problema con la factura" in body
    assert "&lt;b&gt;Quiero hablar con alguien&lt;/b&gt;" in body and "<b>Quiero" not in body


def test_an_agent_is_online_while_a_console_socket_is_alive(people):
    ana = people["agent"]

    presence.touch(ana.pk, "specific.one")
    presence.touch(ana.pk, "specific.two")  # a second tab
    assert presence.online_agent_ids() == {ana.pk}
    presence.leave(ana.pk, "specific.one")
    assert presence.online_count() == 1
    presence.leave(ana.pk, "specific.two")
    assert presence.online_count() == 0


def test_a_console_whose_process_died_drops_out_after_the_ttl(people):
    ana = people["agent"]
    stale = time.time() - presence.PRESENCE_TTL_S - 1
    get_redis().zadd(presence._key(), {f"{ana.pk} specific.gone": stale})

    assert presence.online_agent_ids() == set()
