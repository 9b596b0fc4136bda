"""Voice on the staff views: the calls' key figures (counted by the database) on the dashboard, and a
call's status and duration beside its conversation in the console."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from channels_voice.kpis import call_figures
from channels_voice.models import CallStatus, VoiceCall
from conversations import inbox
from conversations.models import Conversation, HandoffRequest

pytestmark = pytest.mark.django_db


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def conversation(number: str, *, handed_off: bool = False, channel: str = "voice") -> Conversation:
    _contact, found = inbox.ensure_conversation(channel, number)
    if handed_off:
        HandoffRequest.objects.create(conversation=found, requested_by=HandoffRequest.RequestedBy.CONTACT)
    return found


def call(where: Conversation, started: datetime, duration_s: int | None, status: str = CallStatus.COMPLETED) -> None:
    number = where.contact.identities.first().value  # type: ignore[union-attr]
    VoiceCall.objects.create(
        call_sid=f"CA{VoiceCall.objects.count():032d}",
        from_number=number,
        started_at=started,
        ended_at=started + timedelta(seconds=duration_s or 0),
        duration_s=duration_s,
        status=status,
        conversation=where,
    )


@pytest.fixture
def calls() -> tuple[datetime, datetime, list[date]]:
    """Three days of made-up calls, and one call on each side of them."""
    today = timezone.localdate()
    days = [today - timedelta(days=2), today - timedelta(days=1), today]
    ana = conversation("+34600000101", handed_off=True)  # two calls, one conversation
    call(ana, at(days[0], 10), 60)
    call(ana, at(days[0], 12), 120)
    call(conversation("+34600000102"), at(days[1], 9), None, CallStatus.NO_ANSWER)
    call(conversation("+34600000103"), at(days[2], 23, 30), 30)
    call(conversation("+34600000104", handed_off=True), at(days[0], 0) - timedelta(minutes=1), 1000)
    call(conversation("+34600000105", handed_off=True), at(days[2], 0) + timedelta(days=1), 1000)
    conversation("web-visitor", handed_off=True, channel="web")  # not a call
    return at(days[0], 0), at(days[2], 0) + timedelta(days=1), days


def test_calls_per_day_duration_and_handoff_rate_are_counted(calls: tuple[datetime, datetime, list[date]]):
    since, until, days = calls

    found = call_figures(since, until)

    assert (found.calls, found.days, found.per_day) == (4, 3, {days[0]: 2, days[1]: 1, days[2]: 1})
    assert found.average_duration_s == pytest.approx(70.0)  # (60 + 120 + 30) / 3: the unanswered call has none
    assert (found.conversations, found.handed_off) == (3, 1)
    assert found.handoff_rate == pytest.approx(1 / 3) and found.calls_per_day == pytest.approx(4 / 3)


def test_no_calls_is_nothing_to_measure(db: None):
    now = timezone.now()

    found = call_figures(now - timedelta(days=1), now)

    assert (found.calls, found.per_day, found.average_duration_s, found.handoff_rate) == (0, {}, None, None)


def staff_client(django_user_model: Any) -> Client:
    client = Client(headers={"accept-language": "en"})
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))
    return client


def test_the_dashboard_shows_the_voice_figures(calls: Any, django_user_model: Any):
    client = staff_client(django_user_model)

    page = client.get("/console/dashboard/", {"days": "3"}).content.decode()
    web_only = client.get("/console/dashboard/", {"days": "3", "channel": "web"}).content.decode()

    section = page[page.index("📞 Call</h2>") :]
    for label, value in [
        ("Calls", "4"),
        ("Calls per day", "1.3"),
        ("Average call duration", "1 min 10 s"),
        ("Calls handed to a person", "33%"),
    ]:
        assert f'<dt>{label}</dt><dd class="figure">{value}</dd>' in section
    assert "Calls per day" not in web_only


def test_the_console_shows_a_call_beside_its_conversation(django_user_model: Any):
    ana = conversation("+34600000101")
    call(ana, timezone.now() - timedelta(minutes=5), 125)
    client = staff_client(django_user_model)

    page = client.get(f"/console/conversations/{ana.pk}/").content.decode()

    assert "📞</span> Call</span>" in page
    assert "Call: Completed" in page and "Duration: 2 min 5 s" in page
