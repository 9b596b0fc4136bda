"""After the chat: the visitor's rating (CSAT) and the transcript by email, against the real stack.

The transcript goes through the real path: the API queues the task after commit, the suite's real Celery
worker (bulk queue) renders it and Django's SMTP backend hands it to a real SMTP server on localhost.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth import get_user_model

from conversations import csat, endchat, inbox, leadfields, state
from conversations.assistant.tools import decline_consent, give_consent
from conversations.checks import email_is_sent
from conversations.models import Contact, Conversation, ConversationRating, Event, Sender
from conversations.tasks import send_transcript

SESSION = "csat-visitor-0001"
OTHER = "csat-visitor-0002"


def post(client, path: str, body: object):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def rate(client, **body: object):
    return post(client, "/api/webchat/rating", {"session_id": SESSION, **body})


def transcript(client, session: str = SESSION, **body: object):
    return post(client, "/api/webchat/transcript", {"session_id": session, **body})


def chat(session: str = SESSION, text: str = "Hola", locale: str = "es") -> Conversation:
    return inbox.receive("web", session, text, locale=locale).conversation


def ended_chat(session: str = SESSION, locale: str = "es") -> Conversation:
    conversation = chat(session, locale=locale)
    return state.close_conversation(conversation, ended_by="contact", reason="done")


# --- Rating ---------------------------------------------------------------------------------------------


def test_a_closed_conversation_is_rated_and_the_event_recorded(client, db):
    conversation = ended_chat()

    response = rate(client, score=5, comment="  Muy útil, gracias  ")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "conversation_id": str(conversation.pk),
        "score": 5,
        "comment": "Muy útil, gracias",
        "updated": False,
    }
    rating = ConversationRating.objects.get()
    assert (rating.conversation_id, rating.score, rating.comment) == (conversation.pk, 5, "Muy útil, gracias")
    event = Event.objects.get(name="csat_submitted")
    assert event.conversation_id == conversation.pk
    assert event.contact_id == conversation.contact_id
    assert event.payload == {"score": 5, "has_comment": True, "updated": False}


def test_a_second_rating_replaces_the_first(client, db):
    conversation = ended_chat()
    rate(client, score=2, comment="Lento")

    response = rate(client, conversation_id=str(conversation.pk), score=4)

    assert response.status_code == 200
    assert response.json()["updated"] is True
    rating = ConversationRating.objects.get()
    assert (rating.score, rating.comment) == (4, "")
    assert [e.payload["updated"] for e in Event.objects.filter(name="csat_submitted").order_by("id")] == [False, True]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"score": 0}, "score"),
        ({"score": 6}, "score"),
        ({"score": -1}, "score"),
        ({"score": "cinco"}, "score"),
        ({}, "score"),
        ({"score": 3, "comment": "x" * 1001}, "comment"),
        ({"score": 3, "conversation_id": "not-a-uuid"}, "conversation_id"),
        ({"score": 3, "session_id": "bad id"}, "session_id"),
    ],
)
def test_invalid_ratings_are_400s_naming_the_field_and_store_nothing(client, db, body, field):
    ended_chat()

    response = rate(client, **body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]
    assert not ConversationRating.objects.exists()
    assert not Event.objects.filter(name="csat_submitted").exists()


def test_a_comment_of_exactly_1000_characters_is_accepted(client, db):
    ended_chat()

    assert rate(client, score=1, comment="x" * 1000).status_code == 200


def test_a_conversation_still_going_on_cannot_be_rated(client, db):
    chat()

    response = rate(client, score=5)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conversation_open"
    assert not ConversationRating.objects.exists()


def test_a_conversation_the_visitor_asked_the_agent_to_end_can_be_rated(client, db):
    conversation = chat()
    state.request_handoff(conversation, requested_by="contact")
    agent = get_user_model().objects.create_user(username="ana")
    conversation = state.claim_conversation(conversation, agent)
    assert endchat.request_end(conversation) is not None  # pending: the agent has not answered

    response = rate(client, score=3)

    assert response.status_code == 200
    assert ConversationRating.objects.get().conversation_id == conversation.pk


def test_someone_elses_conversation_cannot_be_rated(client, db):
    ended_chat(SESSION)
    theirs = ended_chat(OTHER)

    response = rate(client, conversation_id=str(theirs.pk), score=1)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversation_not_found"
    assert not ConversationRating.objects.exists()


def test_a_session_without_a_conversation_gets_a_404(client, db):
    response = rate(client, score=4)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversation_not_found"


def test_the_config_tells_the_widget_whether_to_ask(client, db, settings):
    assert client.get("/api/webchat/config").json()["csat"] is True
    settings.TALIA_WEBCHAT_CSAT = False
    assert client.get("/api/webchat/config").json()["csat"] is False


def test_with_ratings_off_the_endpoint_refuses(client, db, settings):
    settings.TALIA_WEBCHAT_CSAT = False
    ended_chat()

    response = rate(client, score=5)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csat_disabled"
    assert not ConversationRating.objects.exists()


# --- Transcript: validation -------------------------------------------------------------------------


def test_a_transcript_needs_an_address_given_or_known(client, db):
    ended_chat()

    response = transcript(client)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "email_required"


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "x" * 250 + "@example.com", 42])
def test_a_malformed_address_is_a_400(client, db, email):
    ended_chat()

    response = transcript(client, email=email)

    assert response.status_code == 400
    assert "email" in response.json()["error"]["fields"]


def test_a_transcript_without_a_conversation_is_a_404(client, db):
    response = transcript(client, email="ana@example.com")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversation_not_found"


def test_transcripts_are_rate_limited_per_visitor(client, db):
    conversation = ended_chat()
    statuses = []
    for number in range(4):
        # A new message each time, so that none of them is a duplicate of the one before.
        Conversation.objects.filter(pk=conversation.pk).update(last_seq=100 + number)
        statuses.append(transcript(client, email=f"ana{number}@example.com").status_code)

    assert statuses == [202, 202, 202, 429]
    assert transcript(client, session=OTHER, email="x@example.com").status_code == 404  # others are not limited


# --- Transcript: consent --------------------------------------------------------------------------


def test_with_consent_a_new_address_is_kept_on_the_contact(client, db):
    conversation = ended_chat()
    give_consent(conversation.contact_id)

    assert transcript(client, email="Ana@Example.COM").status_code == 202

    assert Contact.objects.get().email == "Ana@example.com"


@pytest.mark.parametrize("answer", ["declined", None])
def test_without_consent_the_address_is_used_but_not_kept(client, db, answer):
    conversation = ended_chat()
    if answer == "declined":
        decline_consent(conversation.contact_id)

    assert transcript(client, email="ana@example.com").status_code == 202

    assert Contact.objects.get().email == ""


def test_an_address_on_file_is_never_replaced(client, db):
    conversation = ended_chat()
    give_consent(conversation.contact_id)
    leadfields.write_lead_fields(conversation, {"email": "first@example.com"})

    assert transcript(client, email="second@example.com").status_code == 202

    assert Contact.objects.get().email == "first@example.com"


# --- Transcript: the email, through Celery and SMTP ------------------------------------------------------

HOSTILE = "<script>alert('x')</script> & <b>bold</b>"


def test_the_transcript_reaches_the_given_address_in_english_with_the_text_escaped(
    client, celery_worker, smtp_server, settings
):
    settings.TALIA_BUSINESS_NAME = "Clínica Demo"
    conversation = chat(text=HOSTILE, locale="en")
    inbox.send(conversation, "Happy to help!", sender=Sender.ASSISTANT)
    state.close_conversation(conversation, ended_by="contact")

    response = transcript(client, email="visitor@example.com")

    assert response.status_code == 202, response.content
    assert response.json() == {"status": "queued"}
    mail = smtp_server.wait_for(lambda m: "visitor@example.com" in m.recipients)
    assert mail.recipients == ["visitor@example.com"]
    assert mail.message["Subject"] == "Your conversation with Clínica Demo"
    assert mail.message["From"] == "Clínica Demo <hola@clinica.example>"
    assert mail.message["Content-Language"] == "en"
    text = mail.part("text/plain")
    assert HOSTILE in text  # plain text carries the words as they were typed
    assert "] You:" in text and "] Assistant:" in text
    assert text.index(HOSTILE) < text.index("Happy to help!")
    html = mail.part("text/html")
    assert '<html lang="en">' in html
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<strong>You</strong>" in html and "<strong>Assistant</strong>" in html
    assert html.count("<time datetime=") == 2


def test_a_spanish_visitor_gets_it_in_spanish_at_the_address_on_file(client, celery_worker, smtp_server):
    conversation = chat(text="Hola, quiero una cita", locale="es")
    give_consent(conversation.contact_id)
    leadfields.write_lead_fields(conversation, {"email": "lucia@example.com"})
    state.close_conversation(conversation, ended_by="contact")

    assert transcript(client).status_code == 202

    mail = smtp_server.wait_for(lambda m: "lucia@example.com" in m.recipients)
    assert mail.message["Content-Language"] == "es"
    assert "] Tú:\nHola, quiero una cita" in mail.part("text/plain")
    assert '<html lang="es">' in mail.part("text/html")
    assert "<strong>Tú</strong>" in mail.part("text/html")


def test_a_double_click_sends_the_transcript_once(client, celery_worker, smtp_server):
    ended_chat(locale="en")

    first = transcript(client, email="ana@example.com")
    again = transcript(client, email="ana@example.com")
    other = transcript(client, email="bob@example.com")

    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 202)
    assert again.json() == {"status": "already_queued"}
    # One worker takes tasks in order: once bob's has arrived, anything queued for ana before it has too.
    smtp_server.wait_for(lambda m: "bob@example.com" in m.recipients)
    assert [m.recipients for m in smtp_server.messages()] == [["ana@example.com"], ["bob@example.com"]]


def test_a_refused_address_is_given_up_without_retrying(db, smtp_server):
    conversation = ended_chat(locale="en")
    smtp_server.refuse.add("nobody@example.com")

    result = send_transcript.apply(args=(str(conversation.pk), "nobody@example.com"))

    assert result.successful()
    assert result.result is None
    assert smtp_server.messages() == []


def test_an_unreachable_mail_server_is_retried(db, smtp_server, caplog):
    conversation = ended_chat(locale="en")
    smtp_server.stop()  # nothing listens on the port any more

    with caplog.at_level(logging.INFO, logger="celery.app.trace"):
        result = send_transcript.apply(args=(str(conversation.pk), "ana@example.com"))

    # Run eagerly, each retry follows at once, up to max_retries; then the error is the result.
    assert result.failed()
    assert isinstance(result.result, ConnectionRefusedError)
    retries = [r for r in caplog.records if "retry: Retry in" in r.getMessage()]
    assert len(retries) == send_transcript.max_retries


def test_the_openapi_schema_documents_both_endpoints(client, db):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    rating = paths["/api/webchat/rating"]["post"]
    assert {"200", "400", "404", "409"} <= set(rating["responses"])
    assert {"202", "200", "404", "422", "429"} <= set(paths["/api/webchat/transcript"]["post"]["responses"])


def test_a_deployment_without_a_mail_server_is_warned_about(settings):
    settings.DEBUG = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert [warning.id for warning in email_is_sent()] == ["conversations.W001"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert email_is_sent() == []


def test_someone_elses_transcript_cannot_be_asked_for(client, db):
    ended_chat(SESSION)
    theirs = ended_chat(OTHER)

    response = transcript(client, conversation_id=str(theirs.pk), email="ana@example.com")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversation_not_found"


def test_staff_list_ratings_in_the_admin_filtered_by_score(client, db, django_user_model):
    rated = ended_chat(SESSION)
    csat.rate_conversation(rated, 5, "Excelente <b>servicio</b>")
    csat.rate_conversation(ended_chat(OTHER), 2)
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.com", "a-long-password"))

    page = client.get("/admin/conversations/conversationrating/", {"score": 5}, HTTP_ACCEPT_LANGUAGE="en")

    html = page.content.decode()
    assert page.status_code == 200
    assert "Excelente &lt;b&gt;servicio&lt;/b&gt;" in html
    assert "1 conversation rating" in html  # the 2 is filtered out
    assert '<td class="field-score">5</td>' in html
    assert '<td class="field-channel">Web chat</td>' in html
