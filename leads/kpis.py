"""Key figures for the staff dashboard: pure queries over a date range, per day and per channel.

A period is a range of whole days [start, end] in the current time zone, optionally one channel. Each
figure is counted on the day its own thing happened:

- conversations, handoff rate and the assistant's first response: conversations *opened* that day; a
  conversation counts as handed off when it has any HandoffRequest at all (accepted or not);
- messages: messages *created* that day (every sender);
- leads and stage conversion: LeadCards *created* that day; a card reached a stage when a LeadMovement
  took it there (or it sits there now), so a card moved back and forth counts once per stage;
- human first response: the conversation's *first* AgentAssignment, on the day it was assigned, to the
  first agent message from then on;
- queue wait: *accepted* HandoffRequests, on the day they were made, until they were resolved;
- meetings: ScheduledEvents *created* that day and not cancelled;
- ratings (CSAT): ConversationRatings *given* that day (a replaced rating counts once, with its last score).

A period may also name one conversation label: every figure then counts only what belongs to a conversation
carrying it (a lead card through its source conversation, a meeting through the conversation it was booked
in); cards and meetings with no conversation drop out. A period may likewise name one team: only what belongs
to a conversation whose team (Conversation.team, where it was last queued) is that one.

Per agent (`agent_figures`), for the agents' table:
- first response: each AgentAssignment *made* in the period, from the assignment to that agent's first
  message in the conversation from then on (an assignment never answered has no sample);
- resolution: each conversation *closed* in the period that a person had, from its first assignment to its
  closing, credited to the agent who had it last.
Per team (`team_figures`), for the teams' table: the same two measures grouped by the conversation's team
(its current one: where it was last queued), with a row for conversations of no team.
Both as the median and the 90th percentile (nearest rank: the smallest sample at or above 90 % of them).

Durations are in seconds; a median over no samples, and a rate over nothing, is None. Counts are
aggregated by the database; durations come back as value lists and their medians are taken here,
because medians of days do not add up to the median of the period.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from conversations.models import (
    AgentAssignment,
    Conversation,
    ConversationRating,
    HandoffRequest,
    Message,
    Sender,
    Team,
)
from conversations.registry import channel_specs
from leads.models import LeadCard, ScheduledEvent
from leads.pipeline import stages

# (day, channel): the finest grain every figure is gathered at. Cards and meetings without a channel use "".
Key = tuple[date, str]


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    channel: str | None = None
    # A conversations.Label id: only what belongs to a conversation carrying it.
    label: int | None = None
    # A conversations.Team id: only what belongs to a conversation routed to that team.
    team: int | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("A period cannot end before it starts.")

    @classmethod
    def last(
        cls,
        days: int,
        channel: str | None = None,
        label: int | None = None,
        *,
        team: int | None = None,
        today: date | None = None,
    ) -> Period:
        """The `days` days up to and including today (in the current time zone)."""
        end = today or timezone.localdate()
        return cls(end - timedelta(days=days - 1), end, channel, label, team)

    @property
    def since(self) -> datetime:
        """The first moment of `start`, in the current time zone."""
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def until(self) -> datetime:
        """The first moment after `end` (exclusive)."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class StageConversion:
    stage: str
    # Cards of the period that reached the stage at least once.
    cards: int
    rate: float | None


@dataclass(frozen=True)
class Figures:
    conversations: int
    handed_off: int
    messages: int
    leads: int
    meetings: int
    assistant_response_s: float | None
    human_response_s: float | None
    queue_wait_s: float | None
    conversion: tuple[StageConversion, ...]
    ratings: int = 0
    score_total: int = 0

    @property
    def handoff_rate(self) -> float | None:
        return _rate(self.handed_off, self.conversations)

    @property
    def csat_average(self) -> float | None:
        """The mean rating, 1 to 5; None without ratings."""
        return _rate(self.score_total, self.ratings)


@dataclass(frozen=True)
class DayFigures:
    day: date
    figures: Figures


@dataclass(frozen=True)
class ChannelFigures:
    channel: str
    figures: Figures


@dataclass(frozen=True)
class Report:
    period: Period
    total: Figures
    days: tuple[DayFigures, ...]
    channels: tuple[ChannelFigures, ...]


def report(period: Period) -> Report:
    """Every figure of the period: in total, per day (every day, even empty ones) and per channel."""
    tallies: defaultdict[Key, _Tally] = defaultdict(_Tally)
    for key, (opened, handed_off) in conversations_opened(period).items():
        tallies[key].conversations += opened
        tallies[key].handed_off += handed_off
    for key, count in messages_sent(period).items():
        tallies[key].messages += count
    for key, count in meetings_scheduled(period).items():
        tallies[key].meetings += count
    for key, (cards, reached) in stage_reach(period).items():
        tallies[key].leads += cards
        tallies[key].reached.update(reached)
    for key, (rated, score_total) in ratings_given(period).items():
        tallies[key].ratings += rated
        tallies[key].score_total += score_total
    for key, seconds in assistant_first_responses(period):
        tallies[key].assistant.append(seconds)
    for key, seconds in human_first_responses(period):
        tallies[key].human.append(seconds)
    for key, seconds in queue_waits(period):
        tallies[key].waits.append(seconds)

    channels = [period.channel] if period.channel else channel_specs.names()
    channels += sorted({channel for _day, channel in tallies} - set(channels))
    return Report(
        period=period,
        total=_figures(tallies.values()),
        days=tuple(DayFigures(day, _figures(t for (d, _c), t in tallies.items() if d == day)) for day in period.days),
        channels=tuple(
            ChannelFigures(channel, _figures(t for (_d, c), t in tallies.items() if c == channel))
            for channel in channels
        ),
    )


def median(values: Iterable[float]) -> float | None:
    samples = list(values)
    return float(statistics.median(samples)) if samples else None


# --- The queries, one per kind of thing counted ----------------------------------------------------------


def conversations_opened(period: Period) -> dict[Key, tuple[int, int]]:
    """(conversations opened, of which handed off) per day and channel."""
    handed_off = Exists(HandoffRequest.objects.filter(conversation=OuterRef("pk")))
    rows = (
        _within(Conversation.objects.all(), "opened_at", period, "channel", "labels")
        .annotate(day=TruncDate("opened_at"))
        .values("day", "channel")
        .annotate(opened=Count("pk"), handed_off=Count("pk", filter=Q(handed_off)))
        .order_by()
    )
    return {(row["day"], row["channel"]): (row["opened"], row["handed_off"]) for row in rows}


def messages_sent(period: Period) -> dict[Key, int]:
    rows = (
        _within(Message.objects.all(), "created", period, "channel", "conversation__labels")
        .annotate(day=TruncDate("created"))
        .values("day", "channel")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(row["day"], row["channel"]): row["n"] for row in rows}


def meetings_scheduled(period: Period) -> dict[Key, int]:
    rows = (
        _within(ScheduledEvent.objects.all(), "created", period, "conversation__channel", "conversation__labels")
        .exclude(status=ScheduledEvent.Status.CANCELLED)
        .annotate(day=TruncDate("created"), ch=Coalesce(F("conversation__channel"), Value("")))
        .values("day", "ch")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(row["day"], row["ch"]): row["n"] for row in rows}


def ratings_given(period: Period) -> dict[Key, tuple[int, int]]:
    """(ratings, sum of their scores) per day and channel: averages add up from these."""
    rows = (
        _within(ConversationRating.objects.all(), "created", period, "conversation__channel", "conversation__labels")
        .annotate(day=TruncDate("created"))
        .values("day", "conversation__channel")
        .annotate(n=Count("pk"), total=Sum("score"))
        .order_by()
    )
    return {(row["day"], row["conversation__channel"]): (row["n"], row["total"]) for row in rows}


def stage_reach(period: Period) -> dict[Key, tuple[int, Counter[str]]]:
    """Lead cards created per day and channel, and how many of them reached each stage at least once."""
    names = stages()
    reached = {
        f"reached_{n}": Count("pk", filter=Q(stage=stage) | Q(movements__to_stage=stage), distinct=True)
        for n, stage in enumerate(names)
    }
    rows = (
        _within(LeadCard.objects.all(), "created", period, "channel", "source_conversation__labels")
        .annotate(day=TruncDate("created"))
        .values("day", "channel")
        .annotate(cards=Count("pk", distinct=True), **reached)
        .order_by()
    )
    return {
        (row["day"], row["channel"]): (
            row["cards"],
            Counter({stage: row[f"reached_{n}"] for n, stage in enumerate(names)}),
        )
        for row in rows
    }


def assistant_first_responses(period: Period) -> list[tuple[Key, float]]:
    """Per conversation opened in the period: the first contact message to the first assistant message after it.

    Conversations the assistant never answered (handed off at once, or still waiting) have no sample.
    """
    asked = Message.objects.filter(conversation=OuterRef("pk"), sender=Sender.CONTACT).order_by("seq")
    answered = Message.objects.filter(
        conversation=OuterRef("pk"), sender=Sender.ASSISTANT, seq__gt=OuterRef("asked_seq")
    ).order_by("seq")
    rows = (
        _within(Conversation.objects.all(), "opened_at", period, "channel", "labels")
        .annotate(asked_seq=Subquery(asked.values("seq")[:1]), asked_at=Subquery(asked.values("created")[:1]))
        .annotate(answered_at=Subquery(answered.values("created")[:1]), day=TruncDate("opened_at"))
        .filter(answered_at__isnull=False)
        .values_list("day", "channel", "asked_at", "answered_at")
        .order_by()
    )
    return [((day, channel), _seconds(asked_at, answered_at)) for day, channel, asked_at, answered_at in rows]


def human_first_responses(period: Period) -> list[tuple[Key, float]]:
    """Per conversation first assigned in the period: that assignment to the first agent message from then on."""
    earlier = AgentAssignment.objects.filter(conversation=OuterRef("conversation")).filter(
        Q(assigned_at__lt=OuterRef("assigned_at")) | Q(assigned_at=OuterRef("assigned_at"), pk__lt=OuterRef("pk"))
    )
    replied = Message.objects.filter(
        conversation=OuterRef("conversation"), sender=Sender.AGENT, created__gte=OuterRef("assigned_at")
    ).order_by("created", "seq")
    rows = (
        _within(AgentAssignment.objects.all(), "assigned_at", period, "conversation__channel", "conversation__labels")
        .filter(~Exists(earlier))
        .annotate(replied_at=Subquery(replied.values("created")[:1]), day=TruncDate("assigned_at"))
        .filter(replied_at__isnull=False)
        .values_list("day", "conversation__channel", "assigned_at", "replied_at")
        .order_by()
    )
    return [((day, channel), _seconds(assigned_at, replied_at)) for day, channel, assigned_at, replied_at in rows]


def queue_waits(period: Period) -> list[tuple[Key, float]]:
    """Per handoff request made in the period and accepted by an agent: the time it spent in the queue."""
    rows = (
        _within(HandoffRequest.objects.all(), "created", period, "conversation__channel", "conversation__labels")
        .filter(status=HandoffRequest.Status.ACCEPTED, resolved_at__isnull=False)
        .annotate(day=TruncDate("created"))
        .values_list("day", "conversation__channel", "created", "resolved_at")
        .order_by()
    )
    return [((day, channel), _seconds(created, resolved_at)) for day, channel, created, resolved_at in rows]


# --- Per agent --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentFigures:
    agent_id: int
    name: str
    assignments: int
    first_response_median_s: float | None
    first_response_p90_s: float | None
    answered: int
    resolved: int
    resolution_median_s: float | None
    resolution_p90_s: float | None


def agent_figures(period: Period) -> list[AgentFigures]:
    """Each agent with an assignment or a resolution in the period: first-response and resolution times.

    First response: every assignment made in the period, to the assigned agent's first message in the
    conversation from then on. Resolution: every conversation closed in the period that had an assignment,
    from its first assignment to its closing, credited to the agent who had it last.
    """
    replied = Message.objects.filter(
        conversation=OuterRef("conversation"),
        sender=Sender.AGENT,
        agent=OuterRef("agent"),
        created__gte=OuterRef("assigned_at"),
    ).order_by("created", "seq")
    assignments = (
        _within(AgentAssignment.objects.all(), "assigned_at", period, "conversation__channel", "conversation__labels")
        .annotate(replied_at=Subquery(replied.values("created")[:1]))
        .values_list("agent_id", "assigned_at", "replied_at")
        .order_by()
    )
    assigned: defaultdict[int, int] = defaultdict(int)
    responses: defaultdict[int, list[float]] = defaultdict(list)
    for agent_id, assigned_at, replied_at in assignments:
        assigned[agent_id] += 1
        if replied_at is not None:
            responses[agent_id].append(_seconds(assigned_at, replied_at))

    first = AgentAssignment.objects.filter(conversation=OuterRef("pk")).order_by("assigned_at", "pk")
    last = AgentAssignment.objects.filter(conversation=OuterRef("pk")).order_by("-assigned_at", "-pk")
    closed = (
        _within(Conversation.objects.filter(closed_at__isnull=False), "closed_at", period, "channel", "labels")
        .annotate(
            first_assigned=Subquery(first.values("assigned_at")[:1]), last_agent=Subquery(last.values("agent")[:1])
        )
        .filter(last_agent__isnull=False)
        .values_list("last_agent", "first_assigned", "closed_at")
        .order_by()
    )
    resolutions: defaultdict[int, list[float]] = defaultdict(list)
    for agent_id, first_assigned, closed_at in closed:
        resolutions[agent_id].append(_seconds(first_assigned, closed_at))

    ids = set(assigned) | set(resolutions)
    users = get_user_model().objects.filter(pk__in=ids)
    names = {user.pk: user.get_full_name() or user.get_username() for user in users}
    rows = [
        AgentFigures(
            agent_id=agent_id,
            name=names.get(agent_id, str(agent_id)),
            assignments=assigned[agent_id],
            first_response_median_s=median(responses[agent_id]),
            first_response_p90_s=percentile(responses[agent_id], 90),
            answered=len(responses[agent_id]),
            resolved=len(resolutions[agent_id]),
            resolution_median_s=median(resolutions[agent_id]),
            resolution_p90_s=percentile(resolutions[agent_id], 90),
        )
        for agent_id in ids
    ]
    return sorted(rows, key=lambda row: (row.name.casefold(), row.agent_id))


@dataclass(frozen=True)
class TeamFigures:
    team_id: int | None  # None: conversations of no team
    name: str
    assignments: int
    first_response_median_s: float | None
    first_response_p90_s: float | None
    answered: int
    resolved: int
    resolution_median_s: float | None
    resolution_p90_s: float | None


def team_figures(period: Period) -> list[TeamFigures]:
    """`agent_figures`' two measures grouped by the conversation's team instead of the agent: each team with an
    assignment or a resolution in the period, by name, then conversations of no team (team_id None)."""
    replied = Message.objects.filter(
        conversation=OuterRef("conversation"),
        sender=Sender.AGENT,
        agent=OuterRef("agent"),
        created__gte=OuterRef("assigned_at"),
    ).order_by("created", "seq")
    assignments = (
        _within(AgentAssignment.objects.all(), "assigned_at", period, "conversation__channel", "conversation__labels")
        .annotate(replied_at=Subquery(replied.values("created")[:1]))
        .values_list("conversation__team_id", "assigned_at", "replied_at")
        .order_by()
    )
    assigned: defaultdict[int | None, int] = defaultdict(int)
    responses: defaultdict[int | None, list[float]] = defaultdict(list)
    for team_id, assigned_at, replied_at in assignments:
        assigned[team_id] += 1
        if replied_at is not None:
            responses[team_id].append(_seconds(assigned_at, replied_at))

    first = AgentAssignment.objects.filter(conversation=OuterRef("pk")).order_by("assigned_at", "pk")
    closed = (
        _within(Conversation.objects.filter(closed_at__isnull=False), "closed_at", period, "channel", "labels")
        .annotate(first_assigned=Subquery(first.values("assigned_at")[:1]))
        .filter(first_assigned__isnull=False)
        .values_list("team_id", "first_assigned", "closed_at")
        .order_by()
    )
    resolutions: defaultdict[int | None, list[float]] = defaultdict(list)
    for team_id, first_assigned, closed_at in closed:
        resolutions[team_id].append(_seconds(first_assigned, closed_at))

    ids = set(assigned) | set(resolutions)
    names = dict(Team.objects.filter(pk__in=[i for i in ids if i is not None]).values_list("pk", "name"))
    rows = [
        TeamFigures(
            team_id=team_id,
            name=names.get(team_id, "") if team_id is not None else "",
            assignments=assigned[team_id],
            first_response_median_s=median(responses[team_id]),
            first_response_p90_s=percentile(responses[team_id], 90),
            answered=len(responses[team_id]),
            resolved=len(resolutions[team_id]),
            resolution_median_s=median(resolutions[team_id]),
            resolution_p90_s=percentile(resolutions[team_id], 90),
        )
        for team_id in ids
    ]
    return sorted(rows, key=lambda row: (row.team_id is None, row.name.casefold(), row.team_id or 0))


def percentile(values: Iterable[float], rank: int) -> float | None:
    """The nearest-rank percentile: the smallest sample with at least `rank` % of them at or below it."""
    samples = sorted(values)
    if not samples:
        return None
    return float(samples[max(0, math.ceil(rank / 100 * len(samples)) - 1)])


# --- Helpers ----------------------------------------------------------------------------------------------


@dataclass
class _Tally:
    """What one (day, channel) contributed; tallies add up to any coarser grouping."""

    conversations: int = 0
    handed_off: int = 0
    messages: int = 0
    leads: int = 0
    meetings: int = 0
    ratings: int = 0
    score_total: int = 0
    reached: Counter[str] = field(default_factory=Counter)
    assistant: list[float] = field(default_factory=list)
    human: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)


def _figures(tallies: Iterable[_Tally]) -> Figures:
    total = _Tally()
    for tally in tallies:
        total.conversations += tally.conversations
        total.handed_off += tally.handed_off
        total.messages += tally.messages
        total.leads += tally.leads
        total.meetings += tally.meetings
        total.ratings += tally.ratings
        total.score_total += tally.score_total
        total.reached.update(tally.reached)
        total.assistant += tally.assistant
        total.human += tally.human
        total.waits += tally.waits
    return Figures(
        conversations=total.conversations,
        handed_off=total.handed_off,
        messages=total.messages,
        leads=total.leads,
        meetings=total.meetings,
        assistant_response_s=median(total.assistant),
        human_response_s=median(total.human),
        queue_wait_s=median(total.waits),
        conversion=tuple(
            StageConversion(stage, total.reached[stage], _rate(total.reached[stage], total.leads)) for stage in stages()
        ),
        ratings=total.ratings,
        score_total=total.score_total,
    )


def _within(
    queryset: QuerySet[Any], moment: str, period: Period, channel_field: str, label_field: str
) -> QuerySet[Any]:
    """The rows of the period's days (and channel, and label: `label_field` is the path to the labels of the
    row's conversation; one label per conversation at most, so the join never repeats a row; and team, by the
    same path ending in `team`)."""
    queryset = queryset.filter(**{f"{moment}__gte": period.since, f"{moment}__lt": period.until})
    if period.channel:
        queryset = queryset.filter(**{channel_field: period.channel})
    if period.label is not None:
        queryset = queryset.filter(**{label_field: period.label})
    if period.team is not None:
        # The same path, to the conversation's team instead of its labels.
        team_field = label_field.removesuffix("labels") + "team"
        queryset = queryset.filter(**{team_field: period.team})
    return queryset


def _seconds(since: datetime, until: datetime) -> float:
    # Never negative: a clock that stepped back must not pull a median below zero.
    return max(0.0, (until - since).total_seconds())


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None
