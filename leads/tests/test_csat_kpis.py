"""The average rating (CSAT) on the dashboard: per day of the rating, per channel, and on the page."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from conversations import csat, inbox, state
from conversations.models import ConversationRating
from leads import kpis

MADRID = ZoneInfo("Europe/Madrid")
MARCH_2 = date(2026, 3, 2)
MARCH_3 = date(2026, 3, 3)


@pytest.fixture(autouse=True)
def madrid(settings):
    settings.TIME_ZONE = "Europe/Madrid"
    timezone.activate(MADRID)
    yield
    timezone.deactivate()


def rated(channel: str, identity: str, score: int, when: datetime) -> None:
    conversation = inbox.receive(channel, identity, "Hola").conversation
    state.close_conversation(conversation, ended_by="contact")
    csat.rate_conversation(conversation, score)
    ConversationRating.objects.filter(conversation=conversation).update(created=when)


@pytest.fixture
def ratings(db) -> None:
    rated("web", "csat-kpi-0001", 5, datetime(2026, 3, 2, 10, 0, tzinfo=MADRID))
    rated("web", "csat-kpi-0002", 2, datetime(2026, 3, 3, 0, 30, tzinfo=MADRID))  # still 2 March in UTC
    rated("whatsapp", "+34600000001", 4, datetime(2026, 3, 3, 12, 0, tzinfo=MADRID))
    rated("web", "csat-kpi-0003", 1, datetime(2026, 3, 4, 9, 0, tzinfo=MADRID))  # after the period


def test_the_average_rating_per_period_day_and_channel(ratings):
    report = kpis.report(kpis.Period(MARCH_2, MARCH_3))

    assert (report.total.ratings, report.total.csat_average) == (3, 11 / 3)
    assert [(row.day, row.figures.csat_average) for row in report.days] == [(MARCH_2, 5.0), (MARCH_3, 3.0)]
    by_channel = {row.channel: row.figures.csat_average for row in report.channels}
    assert (by_channel["web"], by_channel["whatsapp"]) == (3.5, 4.0)


def test_a_period_without_ratings_has_no_average(db):
    assert kpis.report(kpis.Period(MARCH_2, MARCH_3)).total.csat_average is None


def test_the_dashboard_shows_the_average_of_the_days_shown(db):
    rated("web", "csat-kpi-0004", 4, timezone.now())
    rated("web", "csat-kpi-0005", 5, timezone.now())
    client = Client()
    client.force_login(get_user_model().objects.create_user("sara", is_staff=True))

    page = client.get("/console/dashboard/", {"days": 7}, HTTP_ACCEPT_LANGUAGE="en")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Average rating (CSAT, 1-5)" in html
    assert "4.5 from 2" in html
