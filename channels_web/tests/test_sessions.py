"""Visitor sessions as a dashboard figure: every closure recorded (the visitor's end, a page leave by the
widget's beacon, inactivity, an agent's closing), and sessions started with their conversion to a lead
and to a meeting, through the real API and services."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_web import events as web_events
from channels_web import kpis, services, tasks
from channels_web.models import WebchatSession
from conversations import events, inbox, state
from conversations.models import Conversation, ConversationStatus, EndChatRequest, Event, HandoffRequest, Sender
from leads import pipeline
from leads.models import ScheduledEvent

SESSION = "visitor-session-leave1"
OTHER = "visitor-session-leave2"


@pytest.fixture(autouse=True)
def no_waiting(settings):
    settings.TALIA_REPLY_WAIT_S = 0


def say(client, content: str = "Hola", session: str = SESSION):
    body = {"session_id": session, "author": "user", "content": content}
    return client.post("/api/webchat/messages", data=json.dumps(body), content_type="application/json")


def leave(client, session: str = SESSION, **query: str):
    return client.post(
        f"/api/webchat/leave?{'&'.join(f'{k}={v}' for k, v in {'session_id': session, **query}.items())}"
    )


def closures(session: str = SESSION) -> list[str]:
    return list(
        Event.objects.filter(name=web_events.SESSION_CLOSED.name, payload__session_id=session)
        .order_by("created", "pk")
        .values_list("payload__reason", flat=True)
    )


def seen_earlier(session: str, minutes: int) -> None:
    """The visitor's last activity `minutes` ago: their session and messages moved back in time."""
    earlier = timezone.now() - timedelta(minutes=minutes)
    WebchatSession.objects.filter(session_id=session).update(last_seen_at=earlier, started_at=earlier)
    for conversation in services.conversations_of(session):
        conversation.messages.update(created=earlier)


def test_a_page_leave_records_a_closure_and_leaves_the_conversation_to_the_agent(
    client, db, django_user_model, django_capture_on_commit_callbacks
):
    say(client, "Hola, quiero hablar con alguien")
    conversation = Conversation.objects.get()
    ana = django_user_model.objects.create_user("ana", is_staff=True)
    state.request_handoff(conversation, requested_by=HandoffRequest.RequestedBy.CONTACT)
    state.claim_conversation(conversation, ana)
    events_before = Event.objects.count()

    with django_capture_on_commit_callbacks() as callbacks:
        response = leave(client)

    assert (response.status_code, response.json()) == (202, {"recorded": True})
    assert callbacks == []  # nothing published: no push to agents, the monitor or the visitor
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent) == (ConversationStatus.AGENT, ana)
    assert not EndChatRequest.objects.exists()
    assert closures() == ["page_left"]
    assert Event.objects.count() == events_before + 1
    assert Event.objects.get(name="session_closed").conversation == conversation


def test_page_leaves_count_once_per_stretch_of_activity(client, db):
    say(client, "Hola")
    seen_earlier(SESSION, 5)

    first, second = leave(client), leave(client)  # the visitor browses two more pages of the site
    seen_earlier(SESSION, 1)
    say(client, "Sigo aquí")  # active again
    third = leave(client)

    assert [r.json()["recorded"] for r in (first, second, third)] == [True, False, True]
    assert closures() == ["page_left", "page_left"]


def test_the_visitors_end_is_recorded_after_a_page_leave_but_once(client, db):
    say(client, "Hola")
    seen_earlier(SESSION, 5)
    leave(client)

    ended = client.post("/api/webchat/close", data=json.dumps({"session_id": SESSION}), content_type="application/json")
    again = client.post("/api/webchat/close", data=json.dumps({"session_id": SESSION}), content_type="application/json")

    assert ended.json()["closed"] and again.json()["already_closed"]
    assert closures() == ["page_left", "visitor"]
    assert Conversation.objects.get().status == ConversationStatus.CLOSED


def test_a_new_chat_after_the_end_is_closed_again(client, db):
    say(client, "Primera")
    seen_earlier(SESSION, 3)
    client.post("/api/webchat/close", data=json.dumps({"session_id": SESSION}), content_type="application/json")
    say(client, "Segunda")
    client.post("/api/webchat/close", data=json.dumps({"session_id": SESSION}), content_type="application/json")

    # Every closure, not only the first per browser (WebchatSession.closed_at keeps the first).
    assert closures() == ["visitor", "visitor"]


def test_a_leave_for_an_unknown_session_records_nothing(client, db):
    response = leave(client, "never-talked-0001")

    assert (response.status_code, response.json()) == (202, {"recorded": False})
    assert not Event.objects.filter(name="session_closed").exists()


@pytest.mark.parametrize("session", ["", "bad id!", "x" * 200])
def test_a_malformed_session_id_is_a_field_error(client, db, session):
    response = client.post(f"/api/webchat/leave?session_id={session}")

    assert response.status_code == 400
    assert "session_id" in response.json()["error"]["fields"]


def test_the_beacon_takes_the_widget_token_from_the_query(client, db, settings):
    settings.TALIA_WEBCHAT_PUBLIC_TOKEN = "widget-token-123"
    say_headers = {"HTTP_X_TALIA_TOKEN": "widget-token-123"}
    body = {"session_id": SESSION, "author": "user", "content": "Hola"}
    client.post("/api/webchat/messages", data=json.dumps(body), content_type="application/json", **say_headers)

    refused = leave(client)
    wrong = leave(client, token="nope")
    accepted = leave(client, token="widget-token-123")

    assert (refused.status_code, wrong.status_code, accepted.status_code) == (401, 401, 202)
    assert closures() == ["page_left"]


def test_idle_sessions_are_closed_by_inactivity_once(client, db):
    say(client, "Hola", SESSION)
    say(client, "Hola", OTHER)
    seen_earlier(SESSION, 45)

    first = services.close_idle_sessions(timedelta(minutes=30))
    second = services.close_idle_sessions(timedelta(minutes=30))

    assert (first, second) == (1, 0)
    assert (closures(SESSION), closures(OTHER)) == (["inactivity"], [])
    assert Conversation.objects.filter(status=ConversationStatus.CLOSED).count() == 0


def test_a_session_left_before_it_went_idle_is_not_closed_twice(client, db):
    say(client, "Hola")
    seen_earlier(SESSION, 45)
    leave(client)

    assert services.close_idle_sessions(timedelta(minutes=30)) == 0
    assert closures() == ["page_left"]


def test_the_session_figures_count_starts_closures_and_conversion(client, db, django_user_model):
    since = timezone.now() - timedelta(hours=1)
    # Three visitors: one leaves the page, one becomes a lead with a meeting and ends the chat, one is
    # closed by an agent; a meeting cancelled for a fourth does not count.
    say(client, "Hola", "visitor-figures-01")
    leave(client, "visitor-figures-01")

    lead = say(client, "Soy Marta", "visitor-figures-02")
    assert lead.status_code in (200, 202)
    conversation = services.latest_conversation("visitor-figures-02")
    assert conversation is not None
    pipeline.card_for(conversation.contact, conversation, "assistant")
    ScheduledEvent.objects.create(
        title="Demo", start=timezone.now() + timedelta(days=1), contact=conversation.contact, conversation=conversation
    )
    client.post(
        "/api/webchat/close",
        data=json.dumps({"session_id": "visitor-figures-02"}),
        content_type="application/json",
    )

    say(client, "Hola", "visitor-figures-03")
    agent_closed = services.latest_conversation("visitor-figures-03")
    assert agent_closed is not None
    ana = django_user_model.objects.create_user("ana", is_staff=True)
    state.request_handoff(agent_closed, requested_by=HandoffRequest.RequestedBy.CONTACT)
    state.claim_conversation(agent_closed, ana)
    inbox.send(agent_closed, "Resuelto", sender=Sender.AGENT, agent=ana)
    state.close_conversation(agent_closed, ended_by="agent")

    say(client, "Hola", "visitor-figures-04")
    cancelled = services.latest_conversation("visitor-figures-04")
    assert cancelled is not None
    ScheduledEvent.objects.create(
        title="Demo",
        start=timezone.now() + timedelta(days=1),
        contact=cancelled.contact,
        status=ScheduledEvent.Status.CANCELLED,
    )
    # A whatsapp conversation closed by an agent is not a web session's closure.
    other = inbox.receive("whatsapp", "+34600000077", "Hola").conversation
    state.request_handoff(other, requested_by=HandoffRequest.RequestedBy.CONTACT)
    state.claim_conversation(other, ana)
    state.close_conversation(other, ended_by="agent")

    found = kpis.session_figures(since, timezone.now() + timedelta(minutes=1))

    assert (found.started, found.by_visitor, found.page_left, found.by_agent, found.by_inactivity) == (4, 1, 1, 1, 0)
    assert (found.to_lead, found.to_meeting) == (1, 1)
    assert (found.lead_rate, found.meeting_rate) == (1 / 4, 1 / 4)
    assert Event.objects.filter(name=events.CONVERSATION_CLOSED.name).count() == 3


def test_an_empty_range_has_no_rates(db):
    found = kpis.session_figures(timezone.now() - timedelta(days=1), timezone.now())

    assert (found.started, found.lead_rate, found.meeting_rate) == (0, None, None)
    assert [figure.value for figure in kpis.figures(timezone.now() - timedelta(days=1), timezone.now())] == [
        0,
        0,
        0,
        0,
        0,
        None,
        None,
    ]


def test_the_beat_task_uses_the_idle_setting(client, db, settings):
    say(client, "Hola")
    seen_earlier(SESSION, 20)
    settings.TALIA_WEBCHAT_SESSION_IDLE_MIN = 30
    assert tasks.close_idle_sessions() == 0
    settings.TALIA_WEBCHAT_SESSION_IDLE_MIN = 15
    assert tasks.close_idle_sessions() == 1
    assert closures() == ["inactivity"]
    assert "channels_web.tasks.close_idle_sessions" in {job["task"] for job in settings.CELERY_BEAT_SCHEDULE.values()}
