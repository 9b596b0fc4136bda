"""The web chat's key figures for the staff dashboard (registered as its ChannelSpec's `figures`).

A session is a WebchatSession: one per widget session id (a browser), started with the visitor's first
contact. Over [since, until), all counted by the database:
- sessions started: sessions whose `started_at` falls in the range;
- closures, by what the `session_closed` events recorded in the range say (every closure, not only the
  first per browser; see channels_web.services.record_closure): by the visitor ("end"), by a page leave
  (the widget's beacon), by inactivity (TALIA_WEBCHAT_SESSION_IDLE_MIN); and by an agent, which is the
  core's `conversation_closed` with `ended_by: agent` on a web conversation;
- conversion: of the sessions started in the range, the share whose contact is a lead (has a lead card)
  and the share whose contact has a meeting that was not cancelled (at any time up to now).
Not narrowed by the dashboard's label filter: a session is not a conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from channels_web import events as web_events
from channels_web import services
from channels_web.models import WebchatSession
from conversations import events
from conversations.models import Channel, Event
from conversations.registry import Figure

# Reverse relations other apps add to Contact, by name: the web chat asks, it does not import them.
LEAD_CARD = "contact__lead_card"
MEETINGS = "contact__meetings"
# A meeting counts unless it was cancelled (leads.models.ScheduledEvent.Status).
MEETING_HELD = ("proposed", "confirmed")


@dataclass(frozen=True)
class SessionFigures:
    started: int
    by_visitor: int
    by_agent: int
    by_inactivity: int
    page_left: int
    to_lead: int
    to_meeting: int

    @property
    def lead_rate(self) -> float | None:
        return self.to_lead / self.started if self.started else None

    @property
    def meeting_rate(self) -> float | None:
        return self.to_meeting / self.started if self.started else None


def session_figures(since: datetime, until: datetime) -> SessionFigures:
    started = WebchatSession.objects.filter(started_at__gte=since, started_at__lt=until).aggregate(
        started=Count("pk", distinct=True),
        to_lead=Count("pk", distinct=True, filter=Q(**{f"{LEAD_CARD}__isnull": False})),
        to_meeting=Count(
            "pk",
            distinct=True,
            filter=Q(**{f"{MEETINGS}__status__in": MEETING_HELD}),
        ),
    )
    closures = dict(
        Event.objects.filter(name=web_events.SESSION_CLOSED.name, created__gte=since, created__lt=until)
        .values_list("payload__reason")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("payload__reason", "n")
    )
    by_agent = Event.objects.filter(
        name=events.CONVERSATION_CLOSED.name,
        created__gte=since,
        created__lt=until,
        conversation__channel=Channel.WEB,
        payload__ended_by="agent",
    ).count()
    return SessionFigures(
        started=started["started"],
        by_visitor=closures.get(services.CLOSED_BY_VISITOR, 0),
        by_agent=by_agent,
        by_inactivity=closures.get(services.INACTIVITY, 0),
        page_left=closures.get(services.PAGE_LEFT, 0),
        to_lead=started["to_lead"],
        to_meeting=started["to_meeting"],
    )


def figures(since: datetime, until: datetime) -> list[Figure]:
    found = session_figures(since, until)
    return [
        Figure(_("Sessions started"), found.started, "count"),
        Figure(_("Sessions closed by the visitor"), found.by_visitor, "count"),
        Figure(_("Sessions closed by an agent"), found.by_agent, "count"),
        Figure(_("Sessions closed by inactivity"), found.by_inactivity, "count"),
        Figure(_("Sessions ended by leaving the page"), found.page_left, "count"),
        Figure(_("Sessions that became a lead"), found.lead_rate, "rate"),
        Figure(_("Sessions that led to a meeting"), found.meeting_rate, "rate"),
    ]
