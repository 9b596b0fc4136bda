"""The dashboard's figures, checked against a small week of conversations worked out by hand.

The dataset is built through the real services (inbox, handoff state, pipeline, meeting booking); only
the moments are set afterwards, so every figure can be computed on paper. Days are Madrid days: one
conversation opens at 00:30 on 3 March in Madrid, which is still 2 March in UTC.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from conversations import inbox, state
from conversations.models import AgentAssignment, Conversation, HandoffRequest, Message, Sender
from leads import kpis, pipeline
from leads.models import LeadCard, ScheduledEvent
from leads.tools import book

MADRID = ZoneInfo("Europe/Madrid")
MARCH_2 = date(2026, 3, 2)
MARCH_3 = date(2026, 3, 3)
PERIOD = kpis.Period(MARCH_2, MARCH_3)


@pytest.fixture(autouse=True)
def madrid(settings):
    settings.TIME_ZONE = "Europe/Madrid"
    timezone.activate(MADRID)
    yield
    timezone.deactivate()


def at(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    """A moment in March 2026, Madrid time (UTC+1)."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=MADRID)


def says(channel: str, identity: str, when: datetime) -> Conversation:
    """The contact writes at `when`; a conversation opened by this message opened then too."""
    received = inbox.receive(channel, identity, "Hola")
    Message.objects.filter(pk=received.message.pk).update(created=when)
    if received.opened:
        Conversation.objects.filter(pk=received.conversation.pk).update(opened_at=when)
    return received.conversation


def answers(conversation: Conversation, when: datetime, *, agent: Any = None) -> None:
    sender = Sender.AGENT if agent else Sender.ASSISTANT
    message = inbox.send(conversation, "Buenas", sender=sender, agent=agent)
    Message.objects.filter(pk=message.pk).update(created=when)


def queued(conversation: Conversation, when: datetime) -> HandoffRequest:
    handoff = state.request_handoff(conversation, requested_by=HandoffRequest.RequestedBy.CONTACT)
    HandoffRequest.objects.filter(pk=handoff.pk).update(created=when)
    return handoff


def claimed(conversation: Conversation, agent: Any, when: datetime) -> None:
    state.claim_conversation(conversation, agent)
    AgentAssignment.objects.filter(conversation=conversation).update(assigned_at=when)
    HandoffRequest.objects.filter(conversation=conversation, status="accepted").update(resolved_at=when)


def lead(conversation: Conversation, when: datetime, *moves: str) -> LeadCard:
    card, created = pipeline.card_for(conversation.contact, conversation, "assistant")
    assert created
    LeadCard.objects.filter(pk=card.pk).update(created=when)
    for stage in moves:
        pipeline.move_card(card, stage, moved_by="agent")
    return card


def meeting(conversation: Conversation, when: datetime, *, cancelled: bool = False) -> None:
    event, _ = book(
        conversation,
        title="Demo",
        start=timezone.now() + timedelta(days=30),
        duration_minutes=30,
        notes="",
        message=None,
        created_by="assistant",
    )
    ScheduledEvent.objects.filter(pk=event.pk).update(created=when, status="cancelled" if cancelled else event.status)


@pytest.fixture
def week(db: None) -> None:
    """Five conversations in the period (web A and B, WhatsApp C, D and F) and two just outside it."""
    agent = get_user_model().objects.create_user("ana", is_staff=True)
    agent.groups.add(Group.objects.get_or_create(name="agents")[0])

    # Opened the evening before the period; only its second message, on 2 March, counts.
    early = says("web", "kpi-early", at(1, 23, 50))
    answers(early, at(1, 23, 50, 5))
    lead(early, at(1, 23, 55))
    says("web", "kpi-early", at(2, 9, 0))

    # A (web, 2 March): answered in 4 s; lead qualified, a meeting (which moves it to "meeting"), back.
    a = says("web", "kpi-a", at(2, 10, 0))
    answers(a, at(2, 10, 0, 4))
    says("web", "kpi-a", at(2, 10, 1))
    answers(a, at(2, 10, 1, 10))
    lead(a, at(2, 10, 2), "qualified")
    meeting(a, at(2, 10, 3))
    assert LeadCard.objects.get(contact=a.contact).stage == "meeting"
    pipeline.move_card(LeadCard.objects.get(contact=a.contact), "qualified", moved_by="agent")

    # B (web, 3 March at 00:30 Madrid = 2 March in UTC): answered in 10 s, queued 2 min, agent after 30 s.
    b = says("web", "kpi-b", at(3, 0, 30))
    answers(b, at(3, 0, 30, 10))
    queued(b, at(3, 0, 31))
    claimed(b, agent, at(3, 0, 33))
    answers(b, at(3, 0, 33, 30), agent=agent)
    lead(b, at(3, 0, 35), "qualified", "won")
    meeting(b, at(3, 0, 36))  # already won: the card stays there

    # C (WhatsApp): answered in 20 s, queued 10 min, agent after 60 s; lost, its meeting cancelled.
    c = says("whatsapp", "+34600000001", at(3, 9, 0))
    answers(c, at(3, 9, 0, 20))
    queued(c, at(3, 9, 1))
    claimed(c, agent, at(3, 9, 11))
    answers(c, at(3, 9, 12), agent=agent)
    lead(c, at(3, 9, 5), "lost")
    meeting(c, at(3, 9, 6), cancelled=True)

    # D (WhatsApp): never answered; asked for a person and then gave up (handed off, but no queue wait).
    d = says("whatsapp", "+34600000002", at(3, 12, 0))
    queued(d, at(3, 12, 1))
    state.cancel_handoff(d)

    # F (WhatsApp): the assistant greets first; its first response is to the contact's first message (30 s).
    _contact, f = inbox.ensure_conversation("whatsapp", "+34600000003")
    Conversation.objects.filter(pk=f.pk).update(opened_at=at(3, 14, 0))
    answers(f, at(3, 14, 0))
    says("whatsapp", "+34600000003", at(3, 14, 0, 30))
    answers(f, at(3, 14, 1))

    # The night after the period (4 March at 00:10 in Madrid, still 3 March in UTC): not counted.
    late = says("web", "kpi-late", at(4, 0, 10))
    answers(late, at(4, 0, 10, 3))
    lead(late, at(4, 0, 15))


def day(report: kpis.Report, which: date) -> kpis.Figures:
    return next(row.figures for row in report.days if row.day == which)


def channel(report: kpis.Report, name: str) -> kpis.Figures:
    return next(row.figures for row in report.channels if row.channel == name)


def test_counts_per_day_and_channel(week):
    report = kpis.report(PERIOD)

    assert [row.day for row in report.days] == [MARCH_2, MARCH_3]
    assert [row.channel for row in report.channels] == ["web", "whatsapp", "voice"]
    assert (report.total.conversations, report.total.messages, report.total.leads, report.total.meetings) == (
        5,
        15,
        3,
        2,
    )
    assert (day(report, MARCH_2).conversations, day(report, MARCH_3).conversations) == (1, 4)
    assert (day(report, MARCH_2).messages, day(report, MARCH_3).messages) == (5, 10)
    assert (day(report, MARCH_2).leads, day(report, MARCH_3).leads) == (1, 2)
    assert (day(report, MARCH_2).meetings, day(report, MARCH_3).meetings) == (1, 1)
    web, whatsapp, voice = channel(report, "web"), channel(report, "whatsapp"), channel(report, "voice")
    assert (web.conversations, web.messages, web.leads, web.meetings) == (2, 8, 2, 2)
    assert (whatsapp.conversations, whatsapp.messages, whatsapp.leads, whatsapp.meetings) == (3, 7, 1, 0)
    assert (voice.conversations, voice.messages, voice.leads, voice.meetings) == (0, 0, 0, 0)


def test_conversion_counts_each_stage_a_card_ever_reached(week):
    conversion = {step.stage: (step.cards, step.rate) for step in kpis.report(PERIOD).total.conversion}

    assert conversion == {
        "new": (3, 1.0),
        "qualified": (2, pytest.approx(2 / 3)),  # A twice, B once
        "meeting": (1, pytest.approx(1 / 3)),  # A, though it went back to qualified
        "won": (1, pytest.approx(1 / 3)),
        "lost": (1, pytest.approx(1 / 3)),
    }


def test_handoff_rate_counts_conversations_with_any_handoff_request(week):
    report = kpis.report(PERIOD)

    assert report.total.handed_off == 3  # B, C and D (D cancelled it)
    assert report.total.handoff_rate == pytest.approx(3 / 5)
    assert day(report, MARCH_2).handoff_rate == 0.0
    assert day(report, MARCH_3).handoff_rate == pytest.approx(3 / 4)
    assert channel(report, "web").handoff_rate == pytest.approx(1 / 2)
    assert channel(report, "whatsapp").handoff_rate == pytest.approx(2 / 3)
    assert channel(report, "voice").handoff_rate is None


def test_medians_of_first_responses_and_queue_wait(week):
    report = kpis.report(PERIOD)

    # Assistant: A 4 s, B 10 s, C 20 s, F 30 s (D never answered).
    assert report.total.assistant_response_s == 15.0
    assert day(report, MARCH_2).assistant_response_s == 4.0
    assert day(report, MARCH_3).assistant_response_s == 20.0
    assert channel(report, "web").assistant_response_s == 7.0
    assert channel(report, "whatsapp").assistant_response_s == 25.0
    # Agents: B 30 s, C 60 s. Queue: B 120 s, C 600 s (D's cancelled request is not a wait).
    assert report.total.human_response_s == 45.0
    assert report.total.queue_wait_s == 360.0
    assert (channel(report, "web").queue_wait_s, channel(report, "whatsapp").queue_wait_s) == (120.0, 600.0)
    assert day(report, MARCH_2).human_response_s is None
    assert channel(report, "voice").queue_wait_s is None


def test_one_channel_only(week):
    report = kpis.report(kpis.Period(MARCH_2, MARCH_3, "whatsapp"))

    assert [row.channel for row in report.channels] == ["whatsapp"]
    total = report.total
    assert (total.conversations, total.messages, total.leads, total.meetings, total.handed_off) == (3, 7, 1, 0, 2)
    assert (total.assistant_response_s, total.human_response_s, total.queue_wait_s) == (25.0, 60.0, 600.0)
    assert {step.stage: step.cards for step in total.conversion} == {
        "new": 1,
        "qualified": 0,
        "meeting": 0,
        "won": 0,
        "lost": 1,
    }


def test_a_wider_period_takes_in_the_nights_around_it(week):
    report = kpis.report(kpis.Period(date(2026, 3, 1), date(2026, 3, 4)))

    assert [row.figures.conversations for row in report.days] == [1, 1, 4, 1]
    assert report.total.leads == 5


def test_an_empty_period_has_zeros_and_no_medians(db):
    report = kpis.report(kpis.Period.last(3, today=MARCH_3))

    assert [row.day for row in report.days] == [date(2026, 3, 1), MARCH_2, MARCH_3]
    assert report.total.conversations == 0
    assert report.total.handoff_rate is None
    assert report.total.assistant_response_s is None
    assert all(step.rate is None for step in report.total.conversion)


def test_period_bounds_are_local_midnights():
    period = kpis.Period.last(14, today=MARCH_3)

    assert period.start == date(2026, 2, 18)
    assert len(period.days) == 14
    assert period.since == at(1, 0, 0) - timedelta(days=11)
    assert period.until == at(4, 0, 0)
    with pytest.raises(ValueError):
        kpis.Period(MARCH_3, MARCH_2)
