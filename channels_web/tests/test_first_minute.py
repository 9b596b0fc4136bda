"""The widget's first minute, server side: the config it opens with, out-of-hours hand-offs, the pre-chat
and callback forms (validated, stored through the one writer of lead fields, consent permitting) and the
full-page chat."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from conversations import profile
from conversations.assistant.tools import decline_consent, give_consent
from conversations.models import WEEKDAYS, AssistantProfile, Contact, Conversation, HandoffRequest

SESSION = "visitor-first-minute-01"
ALWAYS_OPEN = {day: [["00:00", "23:59:59"]] for day in WEEKDAYS}


def post(client, path: str, body: object, **headers: str):
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def details(client, **fields: str):
    return post(client, "/api/webchat/details", {"session_id": SESSION, **fields})


def closed_this_week(**fields: object) -> AssistantProfile:
    """Away whenever the test runs: open every day 09:00-18:00 in Madrid, but this week is a holiday."""
    today = timezone.localdate()
    return AssistantProfile.objects.create(
        time_zone="Europe/Madrid",
        business_hours={day: [["09:00", "18:00"]] for day in WEEKDAYS},
        holidays=[(today + timedelta(days=offset)).isoformat() for offset in range(-1, 8)],
        **fields,
    )


def consented_contact(client) -> Contact:
    post(client, "/api/webchat/consent", {"session_id": SESSION, "granted": True})
    return Contact.objects.get()


def test_in_hours_the_config_carries_the_greeting_and_reply_time_in_the_visitors_language(client, transactional_db):
    AssistantProfile.objects.create(
        business_name="Clínica Sonrisas",
        greeting_es="¡Hola! Somos la Clínica Sonrisas.",
        greeting_en="Hi! This is Clínica Sonrisas.",
        reply_minutes=5,
        offer_choice=True,
        business_hours=ALWAYS_OPEN,
    )

    spanish = client.get("/api/webchat/config", {"locale": "es"}).json()
    english = client.get("/api/webchat/config", {"locale": "en-GB"}).json()

    assert (spanish["greeting"], english["greeting"]) == (
        "¡Hola! Somos la Clínica Sonrisas.",
        "Hi! This is Clínica Sonrisas.",
    )
    assert (english["open_now"], english["reply_minutes"], english["offer_choice"]) == (True, 5, True)
    assert english["business_name"] == "Clínica Sonrisas"


def test_out_of_hours_the_config_says_when_the_team_is_back(client, transactional_db):
    closed_this_week(reply_minutes=5)

    body = client.get("/api/webchat/config").json()

    back = profile.current().next_opening()
    assert back is not None and back.hour == 9
    assert body["open_now"] is False
    assert datetime.fromisoformat(body["next_opening"]) == back
    assert body["time_zone"] == "Europe/Madrid"


def test_the_config_refuses_an_unknown_locale(client, db):
    response = client.get("/api/webchat/config", {"locale": "fr"})

    assert response.status_code == 400
    assert "locale" in response.json()["error"]["fields"]


def test_out_of_hours_a_person_is_asked_for_and_the_queue_marks_it(client, db, django_user_model):
    closed_this_week()

    answer = post(client, "/api/webchat/handoff", {"session_id": SESSION}).json()

    assert (answer["status"], answer["out_of_hours"]) == ("queued", True)
    assert datetime.fromisoformat(answer["back_at"]) == profile.current().next_opening()
    conversation = Conversation.objects.get()
    assert conversation.handoff_requests.get().out_of_hours is True
    agent = django_user_model.objects.create_user("ana", is_staff=True)
    client.force_login(agent)
    queue = client.get("/console/").content.decode()
    assert 'class="ooh"' in queue.split('id="queue-list"')[1].split("</ul>")[0]


def test_in_hours_the_queue_does_not_mark_it(client, db, django_user_model):
    AssistantProfile.objects.create(business_hours=ALWAYS_OPEN)

    answer = post(client, "/api/webchat/handoff", {"session_id": SESSION}).json()

    assert (answer["out_of_hours"], answer["back_at"]) == (False, None)
    assert HandoffRequest.objects.get().out_of_hours is False
    client.force_login(django_user_model.objects.create_user("ana", is_staff=True))
    queue = client.get("/console/").content.decode()
    assert 'class="ooh"' not in queue.split('id="queue-list"')[1].split("</ul>")[0]


def test_the_prechat_form_stores_the_name_so_agents_see_who_waits(client, db):
    AssistantProfile.objects.create(prechat_fields=["full_name", "email"], prechat_required=["full_name"])
    consented_contact(client)

    response = details(client, purpose="prechat", full_name="  Ana   Pérez ", email="Ana@Example.COM", locale="es")

    assert response.status_code == 200, response.content
    assert response.json() == {"full_name": "Ana Pérez", "email": "Ana@example.com", "phone": ""}
    post(client, "/api/webchat/handoff", {"session_id": SESSION})
    conversation = Conversation.objects.select_related("contact").get()
    assert str(conversation.contact) == "Ana Pérez"  # what the queue shows


def test_a_prechat_form_missing_a_required_field_is_refused_and_stores_nothing(client, db):
    AssistantProfile.objects.create(prechat_fields=["full_name", "phone"], prechat_required=["full_name", "phone"])
    consented_contact(client)

    response = details(client, purpose="prechat", phone="+34 600 123 456", locale="en")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"full_name": "This field is required."}
    assert Contact.objects.get().phone == ""
    assert not Conversation.objects.exists()


def test_invalid_details_are_named_in_the_visitors_language(client, db):
    AssistantProfile.objects.create(prechat_fields=["full_name", "email", "phone"])
    consented_contact(client)

    response = details(client, purpose="prechat", full_name="Ana", email="ana@", phone="123", locale="en")

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"email", "phone"}
    assert fields["email"] == "This email address is not valid."
    assert Contact.objects.get().full_name == ""  # one bad value stores nothing


def test_an_optional_prechat_form_left_blank_stores_nothing_and_opens_nothing(client, db):
    AssistantProfile.objects.create(prechat_fields=["full_name", "email"])

    response = details(client, purpose="prechat", full_name=" ", email="")

    assert response.status_code == 200  # no consent needed to store nothing
    assert response.json() == {"full_name": "", "email": "", "phone": ""}
    assert not Conversation.objects.exists()


def test_a_field_the_form_does_not_ask_for_is_refused(client, db):
    AssistantProfile.objects.create(prechat_fields=["full_name"])
    consented_contact(client)

    response = details(client, purpose="prechat", full_name="Ana Pérez", phone="+34600123456")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"phone"}


def test_without_consent_details_are_refused_with_409_and_nothing_is_stored(client, db):
    AssistantProfile.objects.create(prechat_fields=["full_name"])

    response = details(client, purpose="prechat", full_name="Ana Pérez")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "consent_required"
    assert Contact.objects.get().full_name == ""


def test_a_declined_consent_is_respected_by_the_callback_form(client, db):
    closed_this_week()
    post(client, "/api/webchat/handoff", {"session_id": SESSION})
    decline_consent(Contact.objects.get().pk)

    response = details(client, purpose="callback", email="ana@example.com")

    assert response.status_code == 409
    assert Contact.objects.get().email == ""


def test_out_of_hours_the_visitor_leaves_a_phone_on_the_waiting_conversation(client, db):
    closed_this_week()
    post(client, "/api/webchat/handoff", {"session_id": SESSION})
    give_consent(Contact.objects.get().pk)

    response = details(client, purpose="callback", phone="600 123 456", locale="es")

    assert response.status_code == 200, response.content
    conversation = Conversation.objects.select_related("contact").get()
    assert (conversation.contact.phone, conversation.status) == ("+34600123456", "queued")


def test_the_callback_form_needs_an_email_or_a_phone(client, db):
    consented_contact(client)

    response = details(client, purpose="callback", full_name="Ana Pérez")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"email"}


@pytest.mark.parametrize(
    "body",
    [
        {"purpose": "newsletter"},
        {"purpose": "prechat", "full_name": "x" * 201},
        {"purpose": "prechat", "locale": "fr"},
        {"purpose": "prechat", "email": 7},
    ],
)
def test_malformed_details_get_a_400(client, db, body):
    response = details(client, **body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_the_profile_checks_its_prechat_form():
    row = AssistantProfile(prechat_fields=["full_name", "company"], prechat_required=[])
    with pytest.raises(ValidationError) as refused:
        row.clean()
    assert set(refused.value.message_dict) == {"prechat_fields"}

    row = AssistantProfile(prechat_fields=["full_name"], prechat_required=["email"])
    with pytest.raises(ValidationError) as refused:
        row.clean()
    assert set(refused.value.message_dict) == {"prechat_required"}


@pytest.mark.parametrize("path", ["/chat/", "/widget.html"])
@pytest.mark.parametrize(
    ("query", "accept", "locale"),
    [("", "", "es"), ("", "en-US,en;q=0.9", "en"), ("?lang=en", "es-ES", "en"), ("?lang=es", "en-US", "es")],
)
def test_the_full_page_chat_speaks_the_asked_language(client, db, path, query, accept, locale):
    headers = {"HTTP_ACCEPT_LANGUAGE": accept} if accept else {}

    response = client.get(f"{path}{query}", **headers)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{locale}">' in html
    assert f'data-locale="{locale}"' in html and 'data-mode="page"' in html
    assert 'src="http://testserver/widget.js?v=' in html


def test_the_admin_edits_the_first_minute(admin_client):
    page = admin_client.get("/admin/conversations/assistantprofile/add/").content.decode()

    for field in ("reply_minutes", "offer_choice", "prechat_fields", "prechat_required"):
        assert f'name="{field}"' in page
