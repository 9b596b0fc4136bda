"""The voice channel's key figures for the staff dashboard (registered as its ChannelSpec's `figures`).

Over the calls *started* in [since, until), all counted by the database (aggregates, no rows loaded):
- calls, and calls per day (the calls of each day in the current time zone; the average over the days of
  the range, empty days included);
- the average duration of the calls that ended with a duration (busy, unanswered and ongoing calls have
  none and are left out);
- the handoff rate on voice: of the voice conversations those calls belong to (each counted once, however
  many calls it had), the share with a handoff request (a person was asked for, accepted or not), the
  same rule as the dashboard's handoff rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Avg, Count, Exists, OuterRef, Q
from django.db.models.functions import TruncDate
from django.utils.translation import gettext_lazy as _

from channels_voice.models import VoiceCall
from channels_voice.services import CHANNEL
from conversations.models import Conversation, HandoffRequest
from conversations.registry import Figure


@dataclass(frozen=True)
class CallFigures:
    calls: int
    days: int
    per_day: dict[date, int]
    average_duration_s: float | None
    conversations: int
    handed_off: int

    @property
    def calls_per_day(self) -> float | None:
        return self.calls / self.days if self.days else None

    @property
    def handoff_rate(self) -> float | None:
        return self.handed_off / self.conversations if self.conversations else None


def call_figures(since: datetime, until: datetime) -> CallFigures:
    calls = VoiceCall.objects.filter(started_at__gte=since, started_at__lt=until)
    totals = calls.aggregate(calls=Count("pk"), average=Avg("duration_s", filter=Q(duration_s__isnull=False)))
    per_day = dict(
        calls.annotate(day=TruncDate("started_at"))
        .order_by()
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    handed_off = Exists(HandoffRequest.objects.filter(conversation=OuterRef("pk")))
    conversations = Conversation.objects.filter(
        channel=CHANNEL, voice_calls__started_at__gte=since, voice_calls__started_at__lt=until
    ).aggregate(total=Count("pk", distinct=True), handed_off=Count("pk", distinct=True, filter=Q(handed_off)))
    return CallFigures(
        calls=totals["calls"],
        days=max(1, round((until - since) / timedelta(days=1))),
        per_day=per_day,
        average_duration_s=float(totals["average"]) if totals["average"] is not None else None,
        conversations=conversations["total"],
        handed_off=conversations["handed_off"],
    )


def figures(since: datetime, until: datetime) -> list[Figure]:
    found = call_figures(since, until)
    return [
        Figure(_("Calls"), found.calls, "count"),
        Figure(_("Calls per day"), found.calls_per_day, "decimal"),
        Figure(_("Average call duration"), found.average_duration_s, "seconds"),
        Figure(_("Calls handed to a person"), found.handoff_rate, "rate"),
    ]
