"""Meetings as iCalendar: one `.ics` per event, and a private feed per user for calendar apps."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

from leads.models import ScheduledEvent

PRODUCT_ID = "-//TalIA//Meetings//EN"
STATUSES: dict[str, str] = {
    ScheduledEvent.Status.PROPOSED: "TENTATIVE",
    ScheduledEvent.Status.CONFIRMED: "CONFIRMED",
    ScheduledEvent.Status.CANCELLED: "CANCELLED",
}


def calendar_of(events: Iterable[ScheduledEvent], name: str) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", settings.TIME_ZONE)
    for event in events:
        calendar.add_component(_vevent(event))
    return bytes(calendar.to_ical())


def _vevent(event: ScheduledEvent) -> Event:
    vevent = Event()
    vevent.add("uid", f"{event.pk}@talia")
    vevent.add("dtstamp", timezone.now())
    vevent.add("dtstart", event.start)
    vevent.add("dtend", event.start + timedelta(minutes=event.duration_minutes))
    vevent.add("summary", event.title)
    vevent.add("status", STATUSES.get(event.status, "TENTATIVE"))
    description = [f"{event.contact}"]
    if event.notes:
        description.append(event.notes)
    vevent.add("description", "\n".join(description))
    for attendee in event.attendees:
        email = attendee.get("email") if isinstance(attendee, dict) else None
        if email:
            address = vCalAddress(f"mailto:{email}")
            address.params["cn"] = vText(str(attendee.get("name") or email))
            vevent.add("attendee", address, encode=False)
    return vevent
