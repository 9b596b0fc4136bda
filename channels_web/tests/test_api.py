"""The web chat REST contract (docs/webchat-api.md) against the real stack."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from django.utils.html import escape

from channels_web import events as web_events
from channels_web.models import WebchatSession
from conversations import events, inbox, state
from conversations.assistant.tools import give_consent
from conversations.console import presence
from conversations.models import (
    WEEKDAYS,
    AssistantProfile,
    Contact,
    Conversation,
    ConversationStatus,
    Event,
    Message,
    Sender,
)

SESSION = "visitor-session-0001"
XSS_CORPUS = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg/onload=alert(document.cookie)>',
    "javascript:alert(1)",
    "<a href='javascript:alert(1)'>clic</a>",
    "{{ 7*7 }} {% debug %}",
    "&lt;b&gt;ya escapado&lt;/b&gt;",
]


def post(client, path: str, body: object, **headers: str):
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def say(client, content: str = "Hola", session: str = SESSION, **extra: str):
    """POST a visitor message; HTTP_* keywords are request headers, the rest extra body fields."""
    headers = {key: value for key, value in extra.items() if key.startswith("HTTP_")}
    fields = {key: value for key, value in extra.items() if not key.startswith("HTTP_")}
    body = {"session_id": session, "author": "user", "content": content, **fields}
    return post(client, "/api/webchat/messages", body, **headers)


@pytest.fixture(autouse=True)
def no_waiting(settings):
    """No worker runs in most tests: answer at once instead of waiting for a reply that cannot come."""
    settings.TALIA_REPLY_WAIT_S = 0


def test_message_is_stored_and_answered_202_when_the_reply_is_not_ready(client, db):
    response = say(client, "Hola, ¿qué tal?", locale="es-ES")

    assert response.status_code == 202
    body = response.json()
    assert body["reply"] is None
    assert body["metadata"]["status"] == "pending"
    message = Message.objects.get(pk=body["metadata"]["last_message_id"])
    assert (message.text, message.sender, message.channel) == ("Hola, ¿qué tal?", Sender.CONTACT, "web")
    assert message.metadata["locale"] == "es"
    assert message.metadata["ip"] == "127.0.0.1"
    assert str(message.conversation_id) == body["metadata"]["conversation_id"]
    assert WebchatSession.objects.get(session_id=SESSION).contact_id == message.conversation.contact_id
    assert Event.objects.filter(name=web_events.WEBCHAT_STARTED.name).count() == 1


def test_the_assistant_reply_comes_back_in_the_response(client, celery_worker, settings):
    settings.TALIA_REPLY_WAIT_S = 20

    response = say(client, "Hola")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["reply"].startswith("¡Hola!")
    reply = Message.objects.get(pk=body["metadata"]["assistant_message_id"])
    assert reply.sender == Sender.ASSISTANT and reply.text == body["reply"]
    assert body["metadata"]["status"] == "bot"
    assert body["metadata"]["citations"] == []


def test_while_a_person_has_the_conversation_no_reply_is_awaited(client, db):
    say(client, "Hola")
    state.request_handoff(Conversation.objects.get(), requested_by="contact")

    response = say(client, "¿Hay alguien?")

    assert response.status_code == 200
    assert response.json()["reply"] is None
    assert response.json()["metadata"]["status"] == "queued"


def test_a_retried_post_with_the_same_client_message_id_is_stored_once(client, db):
    first = say(client, "Hola", client_message_id="msg-000000001")
    again = say(client, "Hola", client_message_id="msg-000000001")

    assert first.json()["metadata"]["last_message_id"] == again.json()["metadata"]["last_message_id"]
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"author": "user", "content": "Hola"}, "session_id"),
        ({"session_id": "short", "author": "user", "content": "Hola"}, "session_id"),
        ({"session_id": "has spaces in it", "author": "user", "content": "Hola"}, "session_id"),
        ({"session_id": "x" * 129, "author": "user", "content": "Hola"}, "session_id"),
        ({"session_id": SESSION, "author": "assistant", "content": "Hola"}, "author"),
        ({"session_id": SESSION, "author": "user", "content": "   "}, "content"),
        ({"session_id": SESSION, "author": "user", "content": "a" * 4001}, "content"),
        ({"session_id": SESSION, "author": "user", "content": "Hola", "locale": "fr"}, "locale"),
        ({"session_id": SESSION, "author": "user", "content": "Hola", "client_message_id": "no"}, "client_message_id"),
    ],
)
def test_invalid_fields_get_a_400_naming_them_and_store_nothing(client, db, body, field):
    response = post(client, "/api/webchat/messages", body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]
    assert not Message.objects.exists()


def test_content_of_exactly_4000_characters_is_accepted(client, db):
    assert say(client, "a" * 4000).status_code == 202


def test_malformed_json_is_a_400_that_says_so(client, db):
    response = client.post("/api/webchat/messages", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_a_json_array_is_refused_cleanly(client, db):
    response = post(client, "/api/webchat/messages", [1, 2])

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_an_object"


@override_settings(TALIA_WEBCHAT_PUBLIC_TOKEN="pk_live_demo_token")
def test_the_public_token_is_required_when_configured(client, db):
    missing = say(client)
    wrong = say(client, HTTP_X_TALIA_TOKEN="nope")
    right = say(client, HTTP_X_TALIA_TOKEN="pk_live_demo_token")

    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 202)
    assert missing.json()["error"]["code"] == "invalid_token"
    assert Message.objects.count() == 1


def test_a_foreign_origin_is_refused(client, db):
    response = say(client, HTTP_ORIGIN="https://evil.example")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert not Message.objects.exists()


@override_settings(TALIA_WEBCHAT_ALLOWED_ORIGINS=["https://shop.example"])
def test_an_allowed_origin_gets_cors_headers_and_a_preflight(client, db):
    response = say(client, HTTP_ORIGIN="https://shop.example")
    preflight = client.options(
        "/api/webchat/messages", HTTP_ORIGIN="https://shop.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )

    assert response.status_code == 202
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    assert preflight.status_code == 204
    assert "X-TalIA-Token" in preflight["Access-Control-Allow-Headers"]


@override_settings(TALIA_WEBCHAT_ALLOWED_ORIGINS=["https://shop.example"])
def test_a_preflight_names_the_widgets_methods_headers_and_max_age(client, db):
    preflight = client.options(
        "/api/webchat/messages", HTTP_ORIGIN="https://shop.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    response = say(client, HTTP_ORIGIN="https://shop.example")

    assert preflight["Access-Control-Allow-Origin"] == "https://shop.example"
    assert {m.strip() for m in preflight["Access-Control-Allow-Methods"].split(",")} == {"GET", "POST", "OPTIONS"}
    assert "content-type" in preflight["Access-Control-Allow-Headers"].lower()
    assert preflight["Access-Control-Max-Age"] == "600"
    assert response["Access-Control-Expose-Headers"] == "Retry-After"
    assert "origin" in response["Vary"].lower()


def test_a_preflight_from_a_foreign_origin_is_refused_without_cors_headers(client, db):
    preflight = client.options(
        "/api/webchat/messages", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )

    assert preflight.status_code == 403
    assert preflight.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in preflight


def test_the_sites_own_origin_gets_cors_headers_on_the_widget_api_only(client, db):
    widget = say(client, HTTP_ORIGIN="http://testserver")
    health = client.get("/health", HTTP_ORIGIN="http://testserver")

    assert widget["Access-Control-Allow-Origin"] == "http://testserver"
    assert "Access-Control-Allow-Origin" not in health


def test_the_sites_own_origin_is_always_allowed(client, db):
    assert say(client, HTTP_ORIGIN="http://testserver").status_code == 202


@override_settings(TALIA_WEBCHAT_RATE_PER_SESSION=(2, 60))
def test_too_many_messages_get_429_with_retry_after(client, db):
    assert [say(client, f"mensaje {n}").status_code for n in range(2)] == [202, 202]

    limited = say(client, "otro más")

    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 61
    assert Message.objects.count() == 2
    assert say(client, "otra sesión", session="visitor-session-0002").status_code == 202


@override_settings(TALIA_TRUSTED_PROXIES=["127.0.0.1"])
def test_forwarded_for_is_believed_only_from_a_trusted_proxy(client, db):
    say(client, "Hola", HTTP_X_FORWARDED_FOR="203.0.113.7")
    with override_settings(TALIA_TRUSTED_PROXIES=[]):
        say(client, "Hola", session="visitor-session-0002", HTTP_X_FORWARDED_FOR="203.0.113.8")

    ips = dict(Message.objects.values_list("conversation__contact__identities__value", "metadata__ip"))
    assert ips == {SESSION: "203.0.113.7", "visitor-session-0002": "127.0.0.1"}


def test_history_is_paginated_oldest_first(client, db):
    for n in range(5):
        inbox.receive("web", SESSION, f"mensaje {n}")

    first = client.get("/api/webchat/messages", {"session_id": SESSION, "limit": 2}).json()
    rest = client.get(
        "/api/webchat/messages", {"session_id": SESSION, "after": first["next_after"], "limit": 10}
    ).json()

    assert [m["text"] for m in first["messages"]] == ["mensaje 0", "mensaje 1"]
    assert (first["has_more"], first["next_after"], first["status"]) == (True, 2, "bot")
    assert [m["seq"] for m in rest["messages"]] == [3, 4, 5]
    assert (rest["has_more"], rest["next_after"]) == (False, None)
    assert set(rest["messages"][0]) == {
        "id", "conversation_id", "seq", "direction", "sender", "agent_name", "text", "content_type", "created", "citations",
    }  # fmt: skip


def test_history_of_an_unknown_session_is_empty(client, db):
    body = client.get("/api/webchat/messages", {"session_id": "never-seen-before"}).json()

    assert body == {
        "conversation_id": None,
        "status": None,
        "consent": None,
        "messages": [],
        "has_more": False,
        "next_after": None,
    }


def test_one_consent_state_for_the_notice_the_chat_and_the_api(client, transactional_db, listen):
    received = inbox.receive("web", SESSION, "Hola", locale="es")
    sockets = listen(f"contact.{received.contact.pk}")

    declined = client.post(
        "/api/webchat/consent", {"session_id": SESSION, "granted": False}, content_type="application/json"
    ).json()
    pushed = sockets.receive()
    page = client.get("/api/webchat/messages", {"session_id": SESSION}).json()
    history = client.get(f"/api/webchat/history/{SESSION}").json()

    assert declined["consent"] == "declined"
    assert pushed is not None and (pushed["type"], pushed["consent"]) == ("consent.changed", "declined")
    assert page["consent"] == history["consent"] == "declined"
    # A yes in the chat (the record_consent tool) replaces it, and the notice hears of that too.
    give_consent(received.contact.pk)
    pushed = sockets.receive()
    assert pushed is not None and pushed["consent"] == "granted"
    # ...and a later no in the notice does not take back a yes.
    again = client.post(
        "/api/webchat/consent", {"session_id": SESSION, "granted": False}, content_type="application/json"
    ).json()
    assert again["consent"] == "granted"
    assert client.get("/api/webchat/messages", {"session_id": SESSION}).json()["consent"] == "granted"


def test_history_query_is_validated(client, db):
    response = client.get("/api/webchat/messages", {"session_id": SESSION, "limit": 1000, "after": -1})

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"limit", "after"}


def test_whole_history_spans_every_conversation(client, db):
    first = inbox.receive("web", SESSION, "primera")
    state.close_conversation(first.conversation, ended_by="contact")
    inbox.receive("web", SESSION, "segunda")

    body = client.get(f"/api/webchat/history/{SESSION}").json()

    assert [m["text"] for m in body["messages"]] == ["primera", "segunda"]
    assert client.get("/api/webchat/history/bad id!").status_code in (400, 404)


def test_close_is_idempotent_and_records_the_session(client, db):
    say(client, "Hola")

    first = post(client, "/api/webchat/close", {"session_id": SESSION, "reason": "done"})
    second = post(client, "/api/webchat/close", {"session_id": SESSION})

    assert first.json() == {"closed": True, "already_closed": False, "end_requested": False}
    assert second.json() == {"closed": True, "already_closed": True, "end_requested": False}
    assert Conversation.objects.get().status == ConversationStatus.CLOSED
    session = WebchatSession.objects.get()
    assert (session.close_reason, session.message_count, session.lead_captured) == ("done", 1, False)
    assert session.closed_at is not None
    assert Event.objects.filter(name=events.CONVERSATION_CLOSED.name).count() == 1


def test_handoff_queues_the_conversation_even_before_the_first_message(client, db):
    first = post(client, "/api/webchat/handoff", {"session_id": SESSION})
    again = post(client, "/api/webchat/handoff", {"session_id": SESSION})

    assert first.json() == {
        "status": "queued",
        "agents_online": 0,
        "queue_timeout_s": 600,
        "out_of_hours": False,
        "back_at": None,
    }
    assert again.json() == first.json()
    conversation = Conversation.objects.get()
    assert conversation.handoff_requests.get().requested_by == "contact"


@override_settings(TALIA_QUEUE_TIMEOUT_S=0)
def test_the_handoff_answer_counts_the_agents_online(client, db, django_user_model):
    ana = django_user_model.objects.create_user("ana", is_staff=True)
    presence.touch(ana.pk, "specific.console-tab")
    try:
        answer = post(client, "/api/webchat/handoff", {"session_id": SESSION}).json()
    finally:
        presence.leave(ana.pk, "specific.console-tab")

    assert answer == {
        "status": "queued",
        "agents_online": 1,
        "queue_timeout_s": None,
        "out_of_hours": False,
        "back_at": None,
    }


@override_settings(TALIA_CONSENT_VERSION="2026-11")
def test_consent_is_stored_with_its_version(client, db):
    response = post(client, "/api/webchat/consent", {"session_id": SESSION, "granted": True})

    assert response.json() == {"consent": "granted", "version": "2026-11"}
    contact = Contact.objects.get()
    assert contact.consent_given_at is not None and contact.consent_text_version == "2026-11"


def test_declined_consent_stores_nothing(client, db):
    response = post(client, "/api/webchat/consent", {"session_id": SESSION, "granted": False})

    assert response.json()["consent"] == "declined"
    assert not Contact.objects.get().has_consented


def test_config_tells_the_widget_what_it_needs(client, db, settings):
    body = client.get("/api/webchat/config").json()

    assert body == {
        "require_consent": True,
        "consent_version": "2026-11",
        "consent_text": "",
        "business_name": "TalIA",
        "assistant_name": "",
        "open_now": True,
        "next_opening": body["next_opening"],  # now: always open without business hours
        "time_zone": settings.TIME_ZONE,
        "greeting": "",
        "reply_minutes": None,
        "offer_choice": False,
        "prechat_fields": [],
        "prechat_required": [],
        "token_required": False,
        "csat": True,
        "whatsapp_url": None,
    }
    assert abs(datetime.fromisoformat(body["next_opening"]) - timezone.now()) < timedelta(minutes=5)


def test_config_follows_the_assistant_profile(client, transactional_db, settings):
    settings.TALIA_WEBCHAT_WHATSAPP_NUMBER = "+34600123456"
    client.get("/api/webchat/config")  # the defaults, now cached
    AssistantProfile.objects.create(
        business_name="Clínica Dental Sonrisa",
        assistant_name="Sofía",
        offer_whatsapp=False,
        business_hours={day: [["09:00", "18:00"]] for day in WEEKDAYS},
        # Closed all this week, whenever the test runs.
        holidays=[(timezone.localdate() + timedelta(days=offset)).isoformat() for offset in range(-1, 8)],
    )

    body = client.get("/api/webchat/config").json()

    assert (body["business_name"], body["assistant_name"], body["whatsapp_url"]) == (
        "Clínica Dental Sonrisa",
        "Sofía",
        None,
    )
    assert body["open_now"] is False


def test_config_offers_whatsapp_when_the_business_names_its_number(client, db, settings):
    settings.TALIA_WEBCHAT_WHATSAPP_NUMBER = "+34600123456"

    assert client.get("/api/webchat/config").json()["whatsapp_url"] == "https://wa.me/34600123456"


@pytest.mark.parametrize("payload", XSS_CORPUS)
def test_markup_sent_by_a_visitor_comes_back_as_text(client, db, payload, django_user_model):
    say(client, payload)

    history = client.get("/api/webchat/messages", {"session_id": SESSION}).json()
    assert history["messages"][0]["text"] == payload  # JSON carries it verbatim; the widget sets textContent

    state.request_handoff(Conversation.objects.get(), requested_by="contact")
    agent = django_user_model.objects.create_user("ana", is_staff=True)
    client.force_login(agent)
    console = client.get("/console/").content.decode()
    assert escape(payload) in console  # shown as text in the agent console too
    if "<" in payload:
        assert payload not in console


def test_the_openapi_schema_describes_the_api(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    assert "/api/webchat/messages" in schema["paths"]
    assert {"get", "post"} <= set(schema["paths"]["/api/webchat/messages"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn." not in docs.content  # served from our own static files


def test_a_visitor_who_stops_waiting_goes_back_to_the_assistant(client, db):
    post(client, "/api/webchat/handoff", {"session_id": SESSION})

    first = post(client, "/api/webchat/handoff/cancel", {"session_id": SESSION})
    again = post(client, "/api/webchat/handoff/cancel", {"session_id": SESSION})

    assert first.json() == {"status": "bot"} == again.json()
    conversation = Conversation.objects.get()
    assert conversation.status == ConversationStatus.BOT
    assert conversation.handoff_requests.get().status == "cancelled"


def test_stopping_to_wait_does_not_take_a_conversation_from_its_agent(client, db, django_user_model):
    post(client, "/api/webchat/handoff", {"session_id": SESSION})
    state.claim_conversation(Conversation.objects.get(), django_user_model.objects.create_user("ana"))

    response = post(client, "/api/webchat/handoff/cancel", {"session_id": SESSION})

    assert response.json() == {"status": "agent"}
