"""Files in the web chat (docs/webchat-api.md, docs/console-api.md): the visitor's upload, who may download
it, and the round trips visitor → agent and agent → visitor, on the real stack."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from channels_web import files
from conversations import inbox, state
from conversations.models import AssistantRun, Conversation, ConversationStatus, Message, Sender
from conversations.tests.console_helpers import signed_in
from talia.asgi import application
from talia.testing.fake_channels.channels import FAKE, fake_spec, plugged

SESSION = "visitor-files-0001"
OTHER = "visitor-files-0002"
# A real 1×1 PNG and a minimal PDF: what a phone and a scanner send.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> Any:
    """Every test stores its files in a directory of its own."""
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def upload(
    client: Client,
    data: bytes,
    name: str = "foto.png",
    session: str = SESSION,
    content_type: str = "image/png",
    **fields: str,
) -> Any:
    body = {"session_id": session, "file": SimpleUploadedFile(name, data, content_type=content_type), **fields}
    return client.post("/api/webchat/attachments", body)


def stored_message(response: Any) -> Message:
    return Message.objects.get(pk=response.json()["message"]["id"])


def make_agent(username: str = "ana") -> Any:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, first_name=username.title())
    user.groups.add(Group.objects.get_or_create(name="agents")[0])
    return user


def body_of(response: Any) -> bytes:
    return response.content


# --- The visitor's upload ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_image_becomes_the_visitors_message_and_the_assistant_acknowledges_it(client: Client) -> None:
    response = upload(client, PNG, "Mi foto.PNG", caption="")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["duplicate"] is False
    message = stored_message(response)
    assert (message.sender, message.channel, message.content_type, message.text) == (Sender.CONTACT, "web", "media", "")
    [entry] = message.metadata["attachments"]
    assert (entry["content_type"], entry["size"], entry["name"]) == ("image/png", len(PNG), "Mi foto.png")
    # Stored through the storage API under a random name, not the visitor's.
    assert entry["stored"].startswith("webchat/") and "foto" not in entry["stored"].lower()
    assert default_storage.open(entry["stored"]).read() == PNG
    [attachment] = body["message"]["attachments"]
    assert attachment["url"].startswith(f"/api/webchat/attachments/{message.pk}/0?t=")
    assert attachment["stored"] is True
    # No engine reads files: the assistant says it was received, in the visitor's language.
    reply = Message.objects.get(conversation=message.conversation, seq=message.seq + 1)
    assert reply.sender == Sender.ASSISTANT
    assert reply.text


@pytest.mark.django_db
def test_a_pdf_with_a_caption_is_answered_by_the_assistant_not_acknowledged(client: Client) -> None:
    response = upload(client, PDF, "presupuesto.pdf", content_type="application/pdf", caption="¿Podéis revisar esto?")

    assert response.status_code == 201, response.content
    message = stored_message(response)
    assert message.text == "¿Podéis revisar esto?"
    assert message.metadata["attachments"][0]["content_type"] == "application/pdf"
    # The caption goes to the assistant's turn like any text; no second, canned reply.
    assert AssistantRun.objects.filter(trigger_message=message).count() == 1
    assert not Message.objects.filter(conversation=message.conversation, sender=Sender.ASSISTANT).exists()


@pytest.mark.django_db
def test_a_file_larger_than_the_limit_is_refused_with_413(client: Client, settings: Any) -> None:
    settings.TALIA_ATTACHMENT_MAX_BYTES = 2048

    just_over = upload(client, PNG + b"\x00" * 2048)
    far_over = upload(client, PNG + b"\x00" * 200_000)  # refused by its Content-Length, before parsing

    for response in (just_over, far_over):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "file_too_large"
    assert not Message.objects.exists()
    assert not default_storage.exists("webchat") or not default_storage.listdir("webchat")[1]


@pytest.mark.django_db
def test_a_program_named_like_an_image_is_refused_by_its_content(client: Client) -> None:
    response = upload(client, EXE, "gatito.png", content_type="image/png")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_file_type"
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "code"),
    [({"session_id": SESSION}, "file_required"), ({"session_id": "bad id!"}, "invalid")],
)
def test_an_upload_without_a_file_or_a_session_says_what_is_wrong(client: Client, fields: dict, code: str) -> None:
    response = client.post("/api/webchat/attachments", fields)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


@pytest.mark.django_db
def test_a_retried_upload_is_stored_once(client: Client, media: Any) -> None:
    first = upload(client, PNG, client_message_id="upload-0001")
    again = upload(client, PNG, client_message_id="upload-0001")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["message"]["id"] == first.json()["message"]["id"]
    assert Message.objects.filter(sender=Sender.CONTACT).count() == 1
    assert len(list((media / "webchat").iterdir())) == 1


@pytest.mark.django_db
def test_uploads_per_session_are_rate_limited(client: Client, settings: Any) -> None:
    settings.TALIA_ATTACHMENT_RATE_PER_SESSION = (2, 3600)

    statuses = [upload(client, PNG).status_code for _ in range(3)]

    assert statuses == [201, 201, 429]


# --- Who may download it -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_visitor_downloads_by_the_signed_link_or_their_session(client: Client) -> None:
    response = upload(client, PDF, "factura.pdf", content_type="application/pdf")
    url = response.json()["message"]["attachments"][0]["url"]
    message = stored_message(response)

    by_link = client.get(url)
    by_session = client.get(f"/api/webchat/attachments/{message.pk}/0?session_id={SESSION}")

    for download in (by_link, by_session):
        assert download.status_code == 200
        assert body_of(download) == PDF
        assert download["Content-Type"] == "application/pdf"
        assert download["Content-Disposition"].startswith('attachment; filename="factura.pdf"')
        assert download["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_an_image_is_served_inline_for_the_widgets_img(client: Client) -> None:
    url = upload(client, PNG).json()["message"]["attachments"][0]["url"]

    download = client.get(url)

    assert download["Content-Type"] == "image/png"
    assert download["Content-Disposition"].startswith("inline")
    assert download["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_another_session_or_a_forged_link_gets_nothing(client: Client) -> None:
    response = upload(client, PNG)
    message = stored_message(response)
    good = response.json()["message"]["attachments"][0]["url"]
    upload(client, PDF, "mine.pdf", session=OTHER, content_type="application/pdf")

    other_session = client.get(f"/api/webchat/attachments/{message.pk}/0?session_id={OTHER}")
    tampered = client.get(re.sub(r"t=[^:]+:", "t=AAAAAA:", good))
    other_index = client.get(good.replace("/0?", "/1?"))
    nothing = client.get(f"/api/webchat/attachments/{message.pk}/0")

    assert other_session.status_code == 404
    assert tampered.status_code == 404
    assert other_index.status_code == 404
    assert nothing.status_code == 400


@pytest.mark.django_db
def test_a_signed_link_expires(client: Client, settings: Any) -> None:
    response = upload(client, PNG)
    message = stored_message(response)
    url = response.json()["message"]["attachments"][0]["url"]
    signature = url.split("t=", 1)[1]
    assert files.signature_ok(message.pk, 0, signature)

    settings.TALIA_ATTACHMENT_URL_TTL_S = -1  # every link is now older than its lifetime

    assert not files.signature_ok(message.pk, 0, signature)
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_files_are_not_served_from_a_public_media_url(client: Client) -> None:
    stored = stored_message(upload(client, PNG)).metadata["attachments"][0]["stored"]

    assert client.get(f"/media/{stored}").status_code == 404
    assert client.get(f"/{stored}").status_code == 404


# --- Visitor → agent -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_round_trip_visitor_to_agent(client: Client) -> None:
    client.post("/api/webchat/handoff", {"session_id": SESSION}, content_type="application/json")
    response = upload(client, PDF, "contrato.pdf", content_type="application/pdf", caption="El contrato firmado")
    message = stored_message(response)
    conversation = message.conversation
    agent = signed_in(make_agent())

    page = agent.get(f"/console/conversations/{conversation.pk}/")
    listed = agent.get(f"/console/api/conversations/{conversation.pk}/messages").json()["messages"]
    download_path = f"/console/conversations/{conversation.pk}/messages/{message.pk}/attachments/0"
    download = agent.get(download_path)

    assert page.status_code == 200
    assert download_path in page.content.decode() and "contrato.pdf" in page.content.decode()
    [item] = next(m for m in listed if m["id"] == str(message.pk))["attachments"]
    assert (item["name"], item["content_type"], item["stored"]) == ("contrato.pdf", "application/pdf", True)
    assert "url" not in item  # the widget's signed links are only for the widget
    assert download.status_code == 200 and body_of(download) == PDF
    assert download["Content-Disposition"].startswith("attachment;")
    # An agent who may not watch it gets nothing; the visitor's link does not open the console's door.
    state.claim_conversation(Conversation.objects.get(pk=conversation.pk), make_agent("bea"))
    assert agent.get(download_path).status_code == 403
    assert Client().get(download_path).status_code in (302, 403)


# --- Agent → visitor -----------------------------------------------------------------------------------


def open_socket(session: str = SESSION) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/webchat/?session_id={session}", headers=[(b"host", b"testserver")])


async def next_of(socket: WebsocketCommunicator, kind: str) -> dict:
    while True:
        event = await socket.receive_json_from(timeout=10)
        if event["type"] == kind:
            return event


@pytest.mark.django_db(transaction=True)
async def test_round_trip_agent_to_visitor() -> None:
    visitor = Client()
    await sync_to_async(visitor.post)("/api/webchat/handoff", {"session_id": SESSION}, content_type="application/json")
    conversation = await Conversation.objects.aget(status=ConversationStatus.QUEUED)
    ana = await sync_to_async(make_agent)()
    await sync_to_async(state.claim_conversation)(conversation, ana)
    socket = open_socket()
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"type": "resume", "after": 0})

    console = await sync_to_async(signed_in)(ana)
    sent = await sync_to_async(console.post)(
        f"/console/api/conversations/{conversation.pk}/attachments",
        {"file": SimpleUploadedFile("plano.png", PNG, content_type="image/png"), "caption": "Aquí tiene el plano"},
    )
    assert sent.status_code == 201, sent.content
    event = await next_of(socket, "message.new")
    while event["message"]["id"] != sent.json()["message"]["id"]:
        event = await next_of(socket, "message.new")

    message = event["message"]
    assert (message["sender"], message["text"], message["agent_name"]) == ("agent", "Aquí tiene el plano", "Ana")
    [attachment] = message["attachments"]
    assert (attachment["name"], attachment["content_type"]) == ("plano.png", "image/png")
    download = await sync_to_async(visitor.get)(attachment["url"])
    assert download.status_code == 200
    assert body_of(download) == PNG
    # The history hands out a working link too.
    history = await sync_to_async(visitor.get)(f"/api/webchat/messages?session_id={SESSION}")
    [in_history] = [m for m in history.json()["messages"] if m["id"] == message["id"]]
    assert (await sync_to_async(visitor.get)(in_history["attachments"][0]["url"])).status_code == 200
    await socket.disconnect()


@pytest.mark.django_db
def test_only_the_assigned_agent_sends_files_and_only_accepted_types(client: Client) -> None:
    client.post("/api/webchat/handoff", {"session_id": SESSION}, content_type="application/json")
    conversation = Conversation.objects.get()
    ana, bea = make_agent("ana"), make_agent("bea")
    state.claim_conversation(conversation, ana)
    path = f"/console/api/conversations/{conversation.pk}/attachments"

    not_hers = signed_in(bea).post(path, {"file": SimpleUploadedFile("a.png", PNG)})
    program = signed_in(ana).post(path, {"file": SimpleUploadedFile("a.png", EXE)})
    missing = signed_in(ana).post(path, {"caption": "sin archivo"})

    assert (not_hers.status_code, not_hers.json()["error"]["code"]) == (409, "not_yours")
    assert (program.status_code, program.json()["error"]["code"]) == (415, "unsupported_file_type")
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "file_required")
    assert not Message.objects.filter(sender=Sender.AGENT).exists()


@pytest.mark.django_db
def test_a_channel_that_cannot_carry_files_refuses_the_agents_file_clearly() -> None:
    with plugged(fake_spec(reply_window=timedelta(hours=24))):
        received = inbox.receive(FAKE, "34600123456", "Hola", external_id="SM-files-1")
        state.request_handoff(received.conversation, requested_by="contact")
        ana = make_agent()
        state.claim_conversation(Conversation.objects.get(pk=received.conversation.pk), ana)

        response = signed_in(ana).post(
            f"/console/api/conversations/{received.conversation.pk}/attachments",
            {"file": SimpleUploadedFile("a.png", PNG)},
        )
        page = signed_in(ana).get(f"/console/conversations/{received.conversation.pk}/")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "files_not_supported"
    assert 'id="composer-file"' not in page.content.decode()
    assert not Message.objects.filter(sender=Sender.AGENT).exists()


@pytest.mark.django_db
def test_a_caption_with_a_nul_character_is_refused_on_both_sides(client: Client) -> None:
    client.post("/api/webchat/handoff", {"session_id": SESSION}, content_type="application/json")
    conversation = Conversation.objects.get()
    ana = make_agent()
    state.claim_conversation(conversation, ana)

    visitor = upload(client, PNG, caption="hola\x00")
    agent = signed_in(ana).post(
        f"/console/api/conversations/{conversation.pk}/attachments",
        {"file": SimpleUploadedFile("a.png", PNG), "caption": "hola\x00"},
    )

    assert visitor.status_code == 400 and "caption" in visitor.json()["error"]["fields"]
    assert agent.status_code == 400 and "caption" in agent.json()["error"]["fields"]
    assert not Message.objects.filter(content_type="media").exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_conversation_deletes_its_files(client: Client) -> None:
    stored = stored_message(upload(client, PNG)).metadata["attachments"][0]["stored"]
    assert default_storage.exists(stored)

    Conversation.objects.all().delete()

    assert not default_storage.exists(stored)
