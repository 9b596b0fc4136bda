"""Human handoff through the console: who may do what, claiming, live chat, closing, handing back."""

from __future__ import annotations

import base64
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from conversations import inbox, state
from conversations.assistant import turns
from conversations.models import AssistantRun, ConversationStatus, ConversationSummary, Message, Sender
from conversations.tests.console_helpers import HOST, api, console_socket, signed_in
from talia.asgi import application
from talia.testing.plugin import wait_for


@pytest.fixture
def queued(db):
    received = inbox.receive("web", "handoff-session-01", "Necesito ayuda con mi pedido 1234")
    state.request_handoff(received.conversation, requested_by="contact", reason="The visitor asked for a person.")
    return received.conversation


@pytest.mark.parametrize(
    ("who", "page", "conversation_page", "claim"),
    [("anonymous", 302, 302, 403), ("visitor", 403, 403, 403), ("agent", 200, 200, 200), ("staff", 200, 200, 200)],
)
def test_authorisation_matrix_for_pages_and_api(people, queued, who, page, conversation_page, claim):
    client = signed_in(people[who])

    assert client.get("/console/").status_code == page
    assert client.get(f"/console/conversations/{queued.pk}/").status_code == conversation_page
    response = api(client, queued, "claim")
    assert response.status_code == claim
    if claim != 200:
        assert "error" in response.json()
        assert Message.objects.filter(conversation=queued).count() == 1


CONSOLE_API = [
    ("post", "claim", {}),
    ("post", "messages", {"text": "Hola"}),
    ("get", "messages", None),
    ("post", "close", {}),
    ("post", "hand-back", {}),
    ("post", "end-request", {"accept": True}),
    ("get", "notes", None),
    ("post", "notes", {"text": "Nota"}),
    ("post", "whisper", {"text": "Susurro"}),
]


@pytest.mark.parametrize("who", ["anonymous", "visitor"])
@pytest.mark.parametrize(("method", "action", "body"), CONSOLE_API)
def test_no_console_endpoint_serves_someone_who_is_not_an_agent(people, queued, who, method, action, body):
    client = signed_in(people[who])
    url = f"/console/api/conversations/{queued.pk}/{action}"

    if method == "get":
        response = client.get(url)
    else:
        response = client.post(url, data=json.dumps(body), content_type="application/json")

    assert response.status_code == 403
    assert response.json()["error"]["code"]
    queued.refresh_from_db()
    assert queued.status == ConversationStatus.QUEUED
    assert Message.objects.filter(conversation=queued).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("who", "code"), [("anonymous", 4401), ("visitor", 4403)])
async def test_the_console_socket_refuses_non_agents(people, who, code):
    socket = await sync_to_async(console_socket)(people[who])
    await socket.connect()

    assert (await socket.receive_output(timeout=5))["code"] == code
    await socket.disconnect()


def test_the_second_agent_to_claim_is_told_who_was_first(queued, make_agent):
    first, second = signed_in(make_agent("ana", first_name="Ana")), signed_in(make_agent("bruno"))

    won = api(first, queued, "claim")
    lost = api(second, queued, "claim")

    assert won.status_code == 200 and won.json()["conversation"]["agent_name"] == "Ana"
    assert lost.status_code == 409
    assert lost.json()["error"] == {
        "code": "already_claimed",
        "message": "Ana took it first.",  # the API speaks English...
        "localized": {"message": "Ana la ha atendido antes."},  # ...and the agent's language, Spanish by default
    }


def test_only_the_assigned_agent_may_write(queued, make_agent):
    ana, bruno = make_agent("ana"), make_agent("bruno")
    api(signed_in(ana), queued, "claim")

    refused = api(signed_in(bruno), queued, "messages", {"text": "Hola"})
    sent = api(signed_in(ana), queued, "messages", {"text": "Hola, soy Ana"})

    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_yours"
    assert sent.status_code == 201
    message = Message.objects.get(pk=sent.json()["message"]["id"])
    assert (message.sender, message.agent, message.text) == (Sender.AGENT, ana, "Hola, soy Ana")


def test_the_conversation_page_shows_the_brief(queued, make_agent):
    body = (
        signed_in(make_agent("ana"))
        .get(f"/console/conversations/{queued.pk}/", HTTP_ACCEPT_LANGUAGE="en")
        .content.decode()
    )

    assert "Necesito ayuda con mi pedido 1234" in body
    assert "The visitor asked for a person." in body


@pytest.mark.django_db(transaction=True)
async def test_agent_and_visitor_chat_live_both_ways(make_agent):
    received = await sync_to_async(inbox.receive)("web", "handoff-session-02", "¿Hay alguien?")
    await sync_to_async(state.request_handoff)(received.conversation, requested_by="contact")
    ana = await sync_to_async(make_agent)("ana", first_name="Ana")
    await sync_to_async(state.claim_conversation)(received.conversation, ana)
    visitor = WebsocketCommunicator(application, "/ws/webchat/?session_id=handoff-session-02", headers=HOST)
    agent = await sync_to_async(console_socket)(ana)
    for socket in (visitor, agent):
        await socket.connect()
        await socket.send_json_to({"type": "ping"})
        assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    await agent.send_json_to({"type": "watch", "conversation_id": str(received.conversation.pk)})
    assert (await agent.receive_json_from(timeout=5))["type"] == "watching"

    await sync_to_async(inbox.send)(received.conversation, "Hola, soy Ana", sender=Sender.AGENT, agent=ana)
    to_visitor = await visitor.receive_json_from(timeout=5)
    assert (to_visitor["message"]["text"], to_visitor["message"]["agent_name"]) == ("Hola, soy Ana", "Ana")
    assert (await agent.receive_json_from(timeout=5))["message"]["text"] == "Hola, soy Ana"

    await visitor.send_json_to({"type": "message", "content": "¡Gracias, Ana!"})
    while (event := await agent.receive_json_from(timeout=5))["type"] != "message.new":
        pass
    assert (event["message"]["sender"], event["message"]["text"]) == ("contact", "¡Gracias, Ana!")
    for socket in (visitor, agent):
        await socket.disconnect()


def test_closing_stores_a_summary(celery_worker, make_agent):
    with transaction.atomic():  # queued before the worker could answer the first message
        received = inbox.receive("web", "handoff-session-03", "Quiero cambiar la dirección de entrega del pedido")
        state.request_handoff(received.conversation, requested_by="contact")
    ana = make_agent("ana")
    client = signed_in(ana)
    api(client, received.conversation, "claim")
    api(client, received.conversation, "messages", {"text": "Hecho, la he cambiado."})

    closed = api(client, received.conversation, "close")

    assert closed.status_code == 200 and closed.json()["conversation"]["status"] == "closed"
    summary = wait_for(lambda: ConversationSummary.objects.filter(conversation=received.conversation).first())
    assert summary.ended_by == "agent"
    assert summary.message_count == 2
    assert "dirección de entrega" in summary.summary
    assert "pedido" in summary.topics


def test_handed_back_the_assistant_answers_again(queued, make_agent):
    ana = make_agent("ana")
    client = signed_in(ana)
    api(client, queued, "claim")

    handed = api(client, queued, "hand-back")
    later = inbox.receive("web", "handoff-session-01", "Gracias, sigo con el asistente")
    run = turns.run_turn(later.message.pk)

    assert handed.json()["conversation"]["status"] == ConversationStatus.BOT
    # The agent is sent back to the queue, told what happened; the page now offers to take it over again.
    assert handed.json()["next"] == "/console/"
    queue = client.get("/console/").content.decode()
    assert "Devuelta al asistente" in queue
    assert 'data-action="take-over"' in client.get(f"/console/conversations/{queued.pk}/").content.decode()
    assert run is not None and run.status == AssistantRun.Status.COMPLETED
    assert Message.objects.filter(conversation=queued, sender=Sender.ASSISTANT).exists()
    assert get_user_model().objects.get(pk=ana.pk).assignments.get().release_reason == "handed_back"


@pytest.mark.django_db(transaction=True)
async def test_a_newly_queued_conversation_reaches_every_agent(make_agent):
    ana = await sync_to_async(make_agent)("ana")
    socket = await sync_to_async(console_socket)(ana)
    await socket.connect()
    await socket.send_json_to({"type": "ping"})
    await socket.receive_json_from(timeout=5)
    received = await sync_to_async(inbox.receive)("web", "handoff-session-04", "Una persona, por favor")

    await sync_to_async(state.request_handoff)(received.conversation, requested_by="contact")

    event = await socket.receive_json_from(timeout=5)
    assert (event["type"], event["conversation_id"], event["status"]) == (
        "queue.added",
        str(received.conversation.pk),
        "queued",
    )
    # The live row names the contact and previews the last messages, like a rendered one.
    assert event["contact_name"].startswith("Visitante ")
    assert event["preview"][0] == {"sender": "contact", "text": "Una persona, por favor"}
    await socket.disconnect()


def test_an_anonymous_web_visitor_is_named_after_their_city_once_known(db):
    received = inbox.receive("web", "handoff-session-05", "Hola")
    contact = received.contact
    ref = str(contact.pk)[:6]
    assert str(contact) == f"Visitante {ref}"

    contact.metadata = {"geolocation": {"city": "Valencia", "country": "Spain"}}
    assert str(contact) == f"Visitante de Valencia · {ref}"
    contact.full_name = "Lucía Pérez"
    assert str(contact) == "Lucía Pérez"


def test_basic_auth_is_not_accepted_by_the_console_api(queued, make_agent):
    agent = make_agent("ana")
    agent.set_password("a-long-agent-password")
    agent.save()
    credentials = base64.b64encode(b"ana:a-long-agent-password").decode()

    response = Client().post(f"/console/api/conversations/{queued.pk}/claim", HTTP_AUTHORIZATION=f"Basic {credentials}")

    assert response.status_code == 403
    queued.refresh_from_db()
    assert queued.status == ConversationStatus.QUEUED


@pytest.fixture
def with_ana(make_agent):
    """A web conversation that Ana has claimed."""
    received = inbox.receive("web", "handoff-session-09", "Hola")
    state.request_handoff(received.conversation, requested_by="contact")
    ana = make_agent("ana", first_name="Ana")
    state.claim_conversation(received.conversation, ana)
    return received.conversation, signed_in(ana)


def visitor_ends(client: Client) -> dict:
    body = {"session_id": "handoff-session-09", "reason": "ya está"}
    return client.post("/api/webchat/close", data=json.dumps(body), content_type="application/json").json()


@pytest.mark.django_db(transaction=True)
def test_the_visitors_end_reaches_the_agent_who_accepts(with_ana, listen):
    conversation, ana = with_ana
    room = listen(conversation.group_name)

    asked = visitor_ends(Client())

    assert asked == {"closed": False, "already_closed": False, "end_requested": True}
    assert room.receive()["type"] == "end.requested"
    assert api(ana, conversation, "end-request", {"accept": True}).status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.CLOSED
    assert conversation.end_requests.get().status == "accepted"
    assert room.receive()["type"] == "conversation.closed"


@pytest.mark.django_db(transaction=True)
def test_the_agent_declines_and_the_visitor_is_told(with_ana, listen):
    conversation, ana = with_ana
    room = listen(conversation.group_name)
    visitor_ends(Client())
    assert room.receive()["type"] == "end.requested"

    declined = api(ana, conversation, "end-request", {"accept": False})

    assert declined.status_code == 200
    assert room.receive()["type"] == "end.declined"
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.AGENT
    assert api(ana, conversation, "end-request", {"accept": True}).json()["error"]["code"] == "no_end_request"
    assert visitor_ends(Client())["end_requested"] is True  # the visitor may ask again


def test_ending_with_the_assistant_closes_at_once(db):
    inbox.receive("web", "handoff-session-09", "Hola")

    assert visitor_ends(Client()) == {"closed": True, "already_closed": False, "end_requested": False}


def test_a_pending_end_request_shows_when_the_agent_opens_the_page(with_ana):
    conversation, ana = with_ana
    visitor_ends(Client())

    body = ana.get(f"/console/conversations/{conversation.pk}/").content.decode()

    assert 'data-end-requested="true"' in body
