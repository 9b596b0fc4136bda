"""The assistant profile: the business's name, words, details to ask for and hours, without code."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from conversations import inbox, profile
from conversations.assistant import turns
from conversations.assistant.prompts import PROMPT_VERSION, instructions
from conversations.assistant.tools import give_consent
from conversations.models import WEEKDAYS, AssistantProfile, ConversationStatus, HandoffRequest
from conversations.tests.test_offline_engine import Visitor, says

pytestmark = pytest.mark.django_db
MADRID = ZoneInfo("Europe/Madrid")
OFFICE = {day: [["09:00", "14:00"], ["16:00", "19:00"]] for day in WEEKDAYS[:5]}


def closed_all_week(**fields: object) -> AssistantProfile:
    """A profile whose team is away whenever the test runs: working days, but this week is a holiday."""
    today = timezone.localdate()
    return AssistantProfile.objects.create(
        time_zone="Europe/Madrid",
        business_hours={day: [["09:00", "18:00"]] for day in WEEKDAYS},
        holidays=[(today + timedelta(days=offset)).isoformat() for offset in range(-1, 7)],
        **fields,
    )


def test_without_a_profile_the_defaults_apply(settings):
    settings.TALIA_BUSINESS_NAME = "Clínica Sonrisas"

    current = profile.current()

    assert (current.business_name, current.assistant_name, current.lead_fields) == ("Clínica Sonrisas", "", ())
    assert current.is_open() and current.offer_whatsapp


def test_a_saved_profile_replaces_the_cached_one():
    assert profile.current().assistant_name == ""  # cached now
    row = AssistantProfile.objects.create(assistant_name="Sofía")
    assert profile.current().assistant_name == "Sofía"

    row.assistant_name = "Lucía"
    row.save()
    assert profile.current().assistant_name == "Lucía"
    row.delete()
    assert profile.current().assistant_name == ""


@override_settings(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
)
def test_without_the_cache_the_profile_is_read_from_the_database():
    AssistantProfile.objects.create(assistant_name="Sofía")

    assert profile.current().assistant_name == "Sofía"


@pytest.mark.parametrize(
    ("moment", "is_open", "next_opening"),
    [
        # Monday 30 November 2026, Madrid time.
        (datetime(2026, 11, 30, 10, 0, tzinfo=MADRID), True, datetime(2026, 11, 30, 10, 0, tzinfo=MADRID)),
        (datetime(2026, 11, 30, 14, 0, tzinfo=MADRID), False, datetime(2026, 11, 30, 16, 0, tzinfo=MADRID)),
        (datetime(2026, 11, 30, 8, 59, tzinfo=MADRID), False, datetime(2026, 11, 30, 9, 0, tzinfo=MADRID)),
        # Friday evening: back on Monday; Tuesday 8 December is a holiday: back on Wednesday.
        (datetime(2026, 12, 4, 19, 30, tzinfo=MADRID), False, datetime(2026, 12, 7, 9, 0, tzinfo=MADRID)),
        (datetime(2026, 12, 7, 20, 0, tzinfo=MADRID), False, datetime(2026, 12, 9, 9, 0, tzinfo=MADRID)),
        # The same moment written in UTC.
        (datetime(2026, 11, 30, 9, 30, tzinfo=ZoneInfo("UTC")), True, None),
    ],
)
def test_business_hours_in_the_profile_time_zone(moment, is_open, next_opening):
    AssistantProfile.objects.create(time_zone="Europe/Madrid", business_hours=OFFICE, holidays=["2026-12-08"])
    current = profile.current()

    assert current.is_open(moment) is is_open
    if next_opening is not None:
        assert current.next_opening(moment) == next_opening


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [
        ({"lead_fields": ["email", "shoe_size"]}, "lead_fields"),
        ({"lead_fields": ["email", "email"]}, "lead_fields"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"business_hours": {"mon": [["18:00", "09:00"]]}}, "business_hours"),
        ({"business_hours": {"monday": [["09:00", "18:00"]]}}, "business_hours"),
        ({"business_hours": {"mon": [["9h", "18h"]]}}, "business_hours"),
        ({"holidays": ["25/12/2026"]}, "holidays"),
    ],
)
def test_a_profile_that_cannot_be_right_is_refused_with_the_field(fields, wrong):
    with pytest.raises(ValidationError) as refused:
        AssistantProfile(**fields).full_clean()

    assert list(refused.value.message_dict) == [wrong]


def test_the_assistant_introduces_itself_by_the_profile():
    AssistantProfile.objects.create(business_name="Clínica Sonrisas", assistant_name="Sofía")
    received = inbox.receive("web", "session-profile-01", "Hola", locale="es")

    run = turns.run_turn(received.message.pk)

    assert run is not None and run.reply_message is not None
    assert run.reply_message.text.startswith("¡Hola! Soy Sofía, el asistente virtual de Clínica Sonrisas.")


def test_the_profile_greeting_is_said_in_the_visitor_language():
    AssistantProfile.objects.create(greeting_en="Welcome to Sonrisas! I'm Sofía.", greeting_es="¡Bienvenido!")
    john = Visitor("session-profile-en", "en")

    assert says(john, "Hi").text.startswith("Welcome to Sonrisas! I'm Sofía.")


def test_only_the_details_the_business_wants_are_asked_for_in_its_order():
    AssistantProfile.objects.create(lead_fields=["phone", "full_name"])
    ana = Visitor("session-profile-fields", "es")
    says(ana, "Hola")

    assert says(ana, "vale").metadata["offline"]["asked"] == "phone"
    assert says(ana, "600123456").metadata["offline"]["asked"] == "full_name"
    done = says(ana, "Ana Pérez")
    assert done.metadata["offline"]["asked"] is None  # neither email nor company is asked for


def test_out_of_hours_the_handoff_says_when_the_team_is_back():
    closed_all_week()
    back = profile.current().next_opening()
    assert back is not None
    ana = Visitor("session-profile-closed", "es")

    reply = says(ana, "Quiero hablar con una persona")

    assert "el equipo está fuera de horario" in reply.text
    assert f"a las {back.hour}:00" in reply.text
    assert ana.conversation.status == ConversationStatus.QUEUED
    assert HandoffRequest.objects.get(conversation=ana.conversation).out_of_hours is True
    output = ana.tool_calls("request_human")[0].output
    assert output["out_of_hours"] is True and output["back_at"] == back.isoformat()


def test_a_business_out_of_hours_message_replaces_the_built_in_one():
    closed_all_week(out_of_hours_es="Volvemos el lunes. ¡Gracias!")
    ana = Visitor("session-profile-closed-own", "es")

    assert says(ana, "Quiero hablar con una persona").text.endswith("Volvemos el lunes. ¡Gracias!")


def test_within_hours_the_handoff_is_not_marked():
    AssistantProfile.objects.create(business_hours={day: [["00:00", "23:59:59"]] for day in WEEKDAYS})
    ana = Visitor("session-profile-open", "es")

    says(ana, "Quiero hablar con una persona")

    assert HandoffRequest.objects.get(conversation=ana.conversation).out_of_hours is False


def test_the_model_reads_the_business_instructions_and_hours():
    closed_all_week(business_name="Clínica Sonrisas", assistant_name="Sofía", instructions_es="Trata de usted.")
    received = inbox.receive("web", "session-profile-model", "Hola", locale="es")
    run = turns.claim_run(received.message.pk)
    assert run is not None
    context = turns.build_context(run)

    text = instructions(context)

    assert "You speak for: Clínica Sonrisas." in text and "Your name: Sofía." in text
    assert "The team is out of hours now; it is back at " in text
    assert text.endswith("## The business's own instructions\nTrata de usted.")


def test_the_model_is_told_the_profile_tone_and_consent_words():
    AssistantProfile.objects.create(tone="formal", consent_text_es="¿Nos permite guardar sus datos para llamarle?")
    received = inbox.receive("web", "session-profile-tone", "Hola", locale="es")
    run = turns.claim_run(received.message.pk)
    assert run is not None

    text = instructions(turns.build_context(run))

    assert "Tone: formal and courteous (in Spanish, address the contact as usted)" in text
    assert "say it in the business's words: ¿Nos permite guardar sus datos para llamarle?" in text


def test_each_run_records_the_profile_words_it_answered_with(settings):
    row = AssistantProfile.objects.create(instructions_es="Ofrece la primera visita gratis.")
    first = turns.run_turn(inbox.receive("web", "session-profile-rev", "Hola", locale="es").message.pk)
    row.instructions_es = "No menciones precios."
    row.save()
    second = turns.run_turn(inbox.receive("web", "session-profile-rev", "¿Y el horario?", locale="es").message.pk)

    assert first is not None and second is not None
    version, revision = first.prompt_version.split("+")
    assert version == PROMPT_VERSION and len(revision) == 10
    assert second.prompt_version.startswith(PROMPT_VERSION + "+") and second.prompt_version != first.prompt_version


@pytest.mark.django_db(transaction=True)  # the config view reads the profile on another thread's connection
def test_the_consent_notice_and_its_version_come_from_the_profile(client, settings):
    settings.TALIA_REQUIRE_CONSENT = True
    AssistantProfile.objects.create(consent_text_en="We keep your details for 30 days.", consent_version="2027-01")

    english = client.get("/api/webchat/config?locale=en", HTTP_ORIGIN="http://testserver").json()
    spanish = client.get("/api/webchat/config?locale=es", HTTP_ORIGIN="http://testserver").json()
    received = inbox.receive("web", "session-profile-consent", "Hola", locale="en")
    contact = give_consent(received.contact.pk)

    assert (english["consent_text"], english["consent_version"]) == ("We keep your details for 30 days.", "2027-01")
    assert spanish["consent_text"] == ""  # the widget's built-in Spanish notice
    assert contact.consent_text_version == "2027-01"
