"""Meetings spotted across a whole conversation, the analysis task and API, close_lead and the calendar."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone
from icalendar import Calendar

from conversations import events, inbox
from conversations.assistant import turns
from conversations.models import Conversation, Event, Message, Sender
from leads import analysis
from leads.models import CalendarFeed, ConversationAnalysis, ConversationInsight, LeadCard, ScheduledEvent
from leads.tasks import analyse_conversations
from talia.testing.fake_openai import text, tool_calls

MADRID = "Europe/Madrid"
# A Wednesday morning in Madrid: "el viernes" is two days later.
WEDNESDAY = datetime(2026, 11, 25, 9, 30, tzinfo=ZoneInfo(MADRID))


@pytest.fixture(autouse=True)
def madrid(settings):
    settings.TIME_ZONE = MADRID
    timezone.activate(ZoneInfo(MADRID))
    yield
    timezone.deactivate()


def conversation_said(
    session: str, *lines: tuple[str, str], locale: str = "es", at: datetime = WEDNESDAY
) -> Conversation:
    """A web conversation with these (sender, text) lines, one minute apart from `at` on."""
    conversation = None
    for number, (sender, line) in enumerate(lines):
        if sender == "contact":
            conversation = inbox.receive("web", session, line, locale=locale).conversation
        else:
            assert conversation is not None
            inbox.send(conversation, line, sender=Sender(sender))
        Message.objects.filter(conversation=conversation, seq=conversation.last_seq).update(
            created=at + timedelta(minutes=number)
        )
    assert conversation is not None
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=at + timedelta(minutes=len(lines)))
    conversation.refresh_from_db()
    return conversation


SPANISH = [
    ("contact", "Hola, quiero agendar una reunión"),
    ("assistant", "¡Claro! ¿Qué día te viene bien?"),
    ("contact", "El viernes a las 10"),
    ("assistant", "Perfecto. ¿De qué tema sería?"),
    ("contact", "Revisión del proyecto"),
]
ENGLISH = [
    ("contact", "Hi, I'd like to set up a meeting"),
    ("assistant", "Sure! Which day suits you?"),
    ("contact", "Friday at 10am"),
    ("assistant", "Great. What is it about?"),
    ("contact", "Project review"),
]


@pytest.mark.parametrize(
    ("lines", "locale", "title"), [(SPANISH, "es", "Revisión del proyecto"), (ENGLISH, "en", "Project review")]
)
def test_a_meeting_spread_over_several_messages_becomes_one_event(db, lines, locale, title):
    conversation = conversation_said(f"analysis-{locale}-0001", *lines, locale=locale)

    outcome = analysis.analyse(conversation)
    again = analysis.analyse(conversation)

    event = ScheduledEvent.objects.get()
    assert event.title == title
    assert timezone.localtime(event.start) == datetime(2026, 11, 27, 10, 0, tzinfo=ZoneInfo(MADRID))  # the Friday
    assert (event.status, event.created_by, event.duration_minutes) == ("proposed", "analysis", 30)
    assert event.message is not None and event.message.text in ("El viernes a las 10", "Friday at 10am")
    assert outcome.events_created == [str(event.pk)] and again.events_created == []  # a re-run creates nothing
    assert ScheduledEvent.objects.count() == 1
    assert ConversationAnalysis.objects.get().analysed_seq == conversation.last_seq
    insight = ConversationInsight.objects.get(conversation=conversation)
    assert insight.engine == "rules" and title in insight.next_step
    assert LeadCard.objects.get(contact=conversation.contact).stage == "meeting"


def test_the_periodic_task_reads_only_quiet_or_closed_conversations_with_news(db, settings):
    settings.TALIA_ANALYSIS_IDLE_S = 600
    quiet = conversation_said("analysis-quiet-0001", *SPANISH, at=timezone.now() - timedelta(hours=1))
    busy = conversation_said("analysis-busy-0001", *SPANISH, at=timezone.now())

    # Through the task API, in this process: a worker would also answer these visitors as they write.
    assert analyse_conversations.apply().get() == 1

    assert ConversationAnalysis.objects.filter(conversation=quiet).exists()
    assert not ConversationAnalysis.objects.filter(conversation=busy).exists()
    assert analysis.pending_conversations() == []  # nothing new since
    inbox.receive("web", "analysis-quiet-0001", "Una cosa más")
    Conversation.objects.filter(pk=quiet.pk).update(last_message_at=timezone.now() - timedelta(hours=1))
    assert [c.pk for c in analysis.pending_conversations()] == [quiet.pk]


def test_the_live_tool_and_the_analysis_agree_on_one_event(db):
    conversation = conversation_said("analysis-live-0001", *SPANISH, at=timezone.now() - timedelta(hours=1))
    friday = analysis.analyse(conversation).findings.meetings[0].start
    ScheduledEvent.objects.all().delete()
    from leads.tools import schedule_meeting

    live = schedule_meeting(conversation, "Revisión del proyecto", friday.isoformat(), None, None)
    outcome = analysis.analyse(conversation)

    assert outcome.events_created == []
    assert [str(e.pk) for e in ScheduledEvent.objects.all()] == [live["event_id"]]


@pytest.mark.parametrize("live_title", ["Reunión pedida en el chat", "Reunión"])
def test_the_analysis_names_a_meeting_the_live_turn_booked_with_a_placeholder(db, live_title):
    conversation = conversation_said("analysis-live-0002", *SPANISH, at=timezone.now() - timedelta(hours=1))
    friday = analysis.analyse(conversation).findings.meetings[0].start
    ScheduledEvent.objects.all().delete()
    from leads.tools import schedule_meeting

    live = schedule_meeting(conversation, live_title, friday.isoformat(), None, None)
    analysis.analyse(conversation)

    event = ScheduledEvent.objects.get()
    assert (str(event.pk), event.title) == (live["event_id"], "Revisión del proyecto")
    updated = Event.objects.get(name="meeting_updated")
    assert (updated.payload["title"], updated.payload["updated_by"]) == ("Revisión del proyecto", "analysis")


def test_the_analysis_never_renames_a_meeting_someone_titled(db):
    conversation = conversation_said("analysis-live-0003", *SPANISH, at=timezone.now() - timedelta(hours=1))
    friday = analysis.analyse(conversation).findings.meetings[0].start
    ScheduledEvent.objects.all().delete()
    from leads.tools import schedule_meeting

    schedule_meeting(conversation, "Demo para el equipo de ventas", friday.isoformat(), None, None)
    analysis.analyse(conversation)

    assert ScheduledEvent.objects.get().title == "Demo para el equipo de ventas"
    assert not Event.objects.filter(name="meeting_updated").exists()


def test_the_analysis_api_is_for_staff_and_says_what_it_found(db, django_user_model):
    conversation = conversation_said("analysis-api-0001", *SPANISH)
    staff, agent = Client(), Client()
    staff.force_login(django_user_model.objects.create_user("boss", is_staff=True))
    agent.force_login(django_user_model.objects.create_user("ana"))
    body = json.dumps({"conversation_id": str(conversation.pk)})

    refused = agent.post("/api/v1/conversations/analyze", body, content_type="application/json")
    assert refused.status_code == 403 and not ScheduledEvent.objects.exists()

    response = staff.post("/api/v1/conversations/analyze", body, content_type="application/json")
    invalid = staff.post("/api/v1/conversations/analyze", {"conversation_id": "nope"}, content_type="application/json")

    assert response.status_code == 200
    found = response.json()["analysed"][0]
    assert found["meetings"][0]["title"] == "Revisión del proyecto"
    assert found["meetings"][0]["start"].startswith("2026-11-27T10:00:00")
    assert len(found["events_created"]) == 1
    assert invalid.status_code == 400 and "conversation_id" in invalid.json()["error"]["fields"]


def test_the_model_engine_reads_the_whole_conversation(db, model_engine):
    conversation = conversation_said("analysis-model-0001", *SPANISH)
    model_engine.when(
        lambda body: "conversation_analysis" in json.dumps(body.get("text") or {}),
        text(
            json.dumps(
                {
                    "meetings": [
                        {
                            "title": "Revisión del proyecto",
                            "start_local": "2026-11-27T10:00",
                            "duration_minutes": 45,
                            "message_number": 3,
                        }
                    ],
                    "intent": "Quiere una reunión para revisar el proyecto.",
                    "topics": ["reunión", "proyecto"],
                    "sentiment": "positive",
                    "next_step": "Confirmar la reunión del viernes.",
                }
            )
        ),
    )

    outcome = analysis.analyse(conversation)

    assert outcome.findings.engine == "openai"
    event = ScheduledEvent.objects.get()
    assert (event.title, timezone.localtime(event.start).hour) == ("Revisión del proyecto", 10)
    assert event.message is not None and event.message.seq == 3
    sent = model_engine.requests_to("/v1/responses")[-1].body
    assert "#3 [2026-11-25 09:32 Wednesday] Contact: El viernes a las 10" in sent["input"]
    insight = ConversationInsight.objects.get()
    assert (insight.sentiment, insight.next_step) == ("positive", "Confirmar la reunión del viernes.")


# --- close_lead and schedule_meeting through the turn ---------------------------------------------------


def test_close_lead_through_the_fake_openai_server(db, model_engine):
    model_engine.script(
        tool_calls(
            ("close_lead", {"summary": "Quiere 10 licencias del plan Empresa.", "stage": "qualified", "value": 4800})
        ),
        text("¡Hecho! Te contactamos con la propuesta."),
    )
    received = inbox.receive("web", "lead-model-0001", "Queremos 10 licencias del plan Empresa")

    turns.run_turn(received.message.pk)

    card = LeadCard.objects.get(contact=received.conversation.contact)
    assert (card.stage, str(card.value), card.summary) == (
        "qualified",
        "4800.00",
        "Quiere 10 licencias del plan Empresa.",
    )
    moves = list(card.movements.values_list("from_stage", "to_stage", "moved_by"))
    assert moves == [("", "new", "assistant"), ("new", "qualified", "assistant")]
    assert Event.objects.filter(name=events.LEAD_CAPTURED.name, contact=card.contact).count() == 1


@pytest.mark.parametrize("bad", [{"stage": "someday"}, {"value": -5}, {"summary": "  "}])
def test_close_lead_refuses_bad_arguments(db, bad):
    from leads.tools import close_lead

    conversation = inbox.receive("web", "lead-bad-0001", "Hola").conversation
    arguments = {"summary": "Quiere información.", "stage": None, "value": None} | bad

    with pytest.raises(Exception, match=r"stage|value|summary") as refused:
        close_lead(conversation, **arguments)

    assert type(refused.value).__name__ == "ToolError"
    assert not LeadCard.objects.exists()


def test_the_offline_engine_books_a_meeting_with_the_real_tool(db):
    received = inbox.receive("web", "meeting-offline-0001", "Quiero una reunión mañana a las 11", locale="es")

    run = turns.run_turn(received.message.pk)

    event = ScheduledEvent.objects.get()
    assert timezone.localtime(event.start).hour == 11 and event.created_by == "assistant"
    assert run is not None and run.reply_message is not None


def test_schedule_meeting_reads_relative_dates_against_the_conversation(db):
    from leads.tools import schedule_meeting

    conversation = conversation_said("meeting-words-0001", ("contact", "¿Podemos vernos?"), at=timezone.now())

    booked = schedule_meeting(conversation, "Demo", "next Tuesday 3pm", 45, None)

    start = datetime.fromisoformat(booked["start"])
    assert (start.weekday(), start.hour, booked["duration_minutes"]) == (1, 15, 45)
    assert start > timezone.now()


# --- Calendar -------------------------------------------------------------------------------------------


def test_an_event_downloads_as_ics_that_parses_back(db, django_user_model):
    conversation = conversation_said("calendar-0001", *SPANISH)
    analysis.analyse(conversation)
    event = ScheduledEvent.objects.get()
    agent = Client()
    agent.force_login(django_user_model.objects.create_user("ana", is_staff=True))

    response = agent.get(f"/console/meetings/{event.pk}.ics")
    anonymous = Client().get(f"/console/meetings/{event.pk}.ics")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    assert anonymous.status_code == 302
    parsed = Calendar.from_ical(response.content)
    vevent = next(iter(parsed.walk("VEVENT")))
    assert str(vevent["summary"]) == "Revisión del proyecto"
    assert vevent.decoded("dtstart") == event.start
    assert vevent.decoded("dtend") - vevent.decoded("dtstart") == timedelta(minutes=30)
    assert str(vevent["uid"]) == f"{event.pk}@talia"


def test_the_private_feed_needs_its_secret_token(db, django_user_model):
    conversation = conversation_said("calendar-0002", *SPANISH)
    analysis.analyse(conversation)
    user = django_user_model.objects.create_user("ana", is_staff=True)
    page = Client()
    page.force_login(user)
    assert page.get("/console/meetings/").status_code == 200
    token = CalendarFeed.objects.get(user=user).token

    feed = Client().get(f"/calendar/{token}.ics")
    wrong = Client().get("/calendar/not-the-token.ics")
    page.post("/console/meetings/new-feed-url")
    revoked = Client().get(f"/calendar/{token}.ics")

    assert feed.status_code == 200
    assert [str(e["summary"]) for e in Calendar.from_ical(feed.content).walk("VEVENT")] == ["Revisión del proyecto"]
    assert wrong.status_code == 404 and revoked.status_code == 404


def test_every_leads_admin_page_renders(db, django_user_model):
    conversation = conversation_said("admin-0001", *SPANISH)
    analysis.analyse(conversation)
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))

    for model in ("leadcard", "scheduledevent", "conversationinsight", "conversationanalysis", "calendarfeed"):
        assert admin.get(f"/admin/leads/{model}/").status_code == 200, model
    card = LeadCard.objects.get()
    assert admin.get(f"/admin/leads/leadcard/{card.pk}/change/").status_code == 200


def test_close_lead_through_the_offline_engine(db):
    session = "lead-offline-0001"
    for line in ("Hola", "sí", "Soy Lucía Gómez", "lucia@example.com", "+34600111222", "Acme"):
        received = inbox.receive("web", session, line, locale="es")
        turns.run_turn(received.message.pk)

    card = LeadCard.objects.get(contact=received.conversation.contact)
    assert card.summary == "Lucía Gómez (Acme) ha dejado sus datos de contacto para que el equipo le atienda."
    assert card.stage == "new" and card.source_conversation == received.conversation
    assert list(card.movements.values_list("to_stage", "moved_by")) == [("new", "assistant")]


@pytest.mark.parametrize("loss", ["removed from agents", "deactivated", "no longer staff", "deleted"])
def test_the_feed_ends_when_its_owner_stops_being_an_agent(db, django_user_model, loss):
    conversation_said("calendar-0003", *SPANISH)
    agents = Group.objects.create(name="agents")
    user = django_user_model.objects.create_user("bea", is_staff=loss == "no longer staff")
    user.groups.add(agents)
    token = CalendarFeed.objects.create(user=user).token
    assert Client().get(f"/calendar/{token}.ics").status_code == 200

    if loss == "removed from agents":
        user.groups.remove(agents)
    elif loss == "deactivated":
        django_user_model.objects.filter(pk=user.pk).update(is_active=False)
    elif loss == "no longer staff":
        user.groups.remove(agents)  # staff alone still counted; losing staff is what ends it below
        assert Client().get(f"/calendar/{token}.ics").status_code == 200
        django_user_model.objects.filter(pk=user.pk).update(is_staff=False)
    else:
        user.delete()

    assert Client().get(f"/calendar/{token}.ics").status_code == 404


def test_an_agent_confirms_and_reschedules_a_meeting_from_the_console(db, django_user_model):
    conversation = conversation_said("console-meeting-0001", *SPANISH, at=timezone.now() - timedelta(hours=1))
    analysis.analyse(conversation)
    event = ScheduledEvent.objects.get()
    agent = Client()
    agent.force_login(django_user_model.objects.create_user("ana", is_staff=True))
    page = agent.get("/console/meetings/")
    assert f"/console/meetings/{event.pk}/confirm" in page.content.decode()

    confirmed = agent.post(f"/console/meetings/{event.pk}/confirm", follow=True)

    event.refresh_from_db()
    assert event.status == "confirmed"
    assert "Reunión «Revisión del proyecto» confirmada." in confirmed.content.decode() or (
        "Meeting “Revisión del proyecto” confirmed." in confirmed.content.decode()
    )

    later = timezone.localtime(event.start + timedelta(days=3)).replace(hour=16, minute=30)
    moved = agent.post(f"/console/meetings/{event.pk}/reschedule", {"start": later.strftime("%Y-%m-%dT%H:%M")})
    assert moved.status_code == 302
    event.refresh_from_db()
    assert (event.start, event.status) == (later, "confirmed")
    updates = Event.objects.filter(name="meeting_updated").order_by("created")
    assert [(e.payload["status"], e.payload["updated_by"]) for e in updates] == [
        ("confirmed", "agent"),
        ("confirmed", "agent"),
    ]
    assert datetime.fromisoformat(updates[1].payload["start"]) == later


@pytest.mark.parametrize("start", ["", "mañana", "2020-01-01T10:00"])
def test_a_reschedule_to_no_time_or_the_past_moves_nothing_and_says_why(db, django_user_model, start):
    conversation = conversation_said("console-meeting-0002", *SPANISH, at=timezone.now() - timedelta(hours=1))
    analysis.analyse(conversation)
    event = ScheduledEvent.objects.get()
    agent = Client()
    agent.force_login(django_user_model.objects.create_user("ana", is_staff=True))

    page = agent.post(f"/console/meetings/{event.pk}/reschedule", {"start": start}, follow=True)

    assert ScheduledEvent.objects.get().start == event.start
    assert not Event.objects.filter(name="meeting_updated").exists()
    body = page.content.decode()
    assert "The meeting was not moved" in body or "No se ha movido la reunión" in body


def test_meeting_actions_need_an_agent(db, django_user_model):
    conversation = conversation_said("console-meeting-0003", *SPANISH, at=timezone.now() - timedelta(hours=1))
    analysis.analyse(conversation)
    event = ScheduledEvent.objects.get()
    visitor = Client()
    visitor.force_login(django_user_model.objects.create_user("mallory"))

    assert Client().post(f"/console/meetings/{event.pk}/confirm").status_code == 302  # to the login page
    assert visitor.post(f"/console/meetings/{event.pk}/confirm").status_code == 403
    assert visitor.get(f"/console/meetings/{event.pk}/confirm").status_code in (403, 405)
    assert ScheduledEvent.objects.get().status == "proposed"
