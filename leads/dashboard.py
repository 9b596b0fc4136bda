"""The supervisors' dashboard: key figures and charts for a range of days, the lead pipeline, CSV exports.

`GET /console/dashboard/?days=14&channel=web&label=3&team=2` renders the page (every parameter optional; `label`
is a conversation label's id and `team` a team's id, each narrowing every conversation-based figure, the board and
the exports); `POST /console/api/leads/<id>/move` moves a
card between stages (the board's drag and drop); `GET /console/dashboard/leads.csv` and
`conversations.csv` export the same range. Staff only. The figures come from leads.kpis, the stage
changes from leads.pipeline; this module parses, calls and renders.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Subquery, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import formats, timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.console.permissions import IsSupervisor, supervisor_required
from conversations.models import AgentAssignment, Conversation, HandoffRequest, Label, Team, channel_label
from conversations.registry import Figure, channel_specs
from leads import charts, kpis
from leads.models import LeadCard, LeadMovement
from leads.pipeline import StageError, check_stage, move_card, stages
from talia.api import BilingualSerializer

DEFAULT_DAYS = 14
MAX_DAYS = 90
CARDS_PER_COLUMN = 100
# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Except a bare E.164 number: digits after a "+" can compute nothing, and a quote would break the number.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")

# Names for the default stages; a stage configured otherwise (TALIA_LEAD_STAGES) shows as it is written.
STAGE_NAMES = {
    "new": gettext_lazy("New"),
    "qualified": gettext_lazy("Qualified"),
    "meeting": gettext_lazy("Meeting"),
    "won": gettext_lazy("Won"),
    "lost": gettext_lazy("Lost"),
}


def stage_label(stage: str) -> str:
    return str(STAGE_NAMES.get(stage, stage))


# --- Which days and channel -------------------------------------------------------------------------------


class RangeForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=MAX_DAYS, required=False)
    # A callable: the registry is filled in the apps' ready(), after this module may be imported.
    channel = forms.ChoiceField(choices=lambda: [("", ""), *channel_specs.choices()], required=False)
    label = forms.ModelChoiceField(queryset=Label.objects.all(), required=False)
    team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False)


def _selected(request: HttpRequest) -> tuple[kpis.Period, RangeForm]:
    """The period asked for; a field that does not validate falls back to its default (the form says why)."""
    form = RangeForm(request.GET)
    form.is_valid()  # fills cleaned_data with the fields that did validate
    days = form.cleaned_data.get("days") or DEFAULT_DAYS
    channel = form.cleaned_data.get("channel") or None
    label = form.cleaned_data.get("label")
    team = form.cleaned_data.get("team")
    return kpis.Period.last(days, channel, label.pk if label else None, team=team.pk if team else None), form


def _query(period: kpis.Period) -> str:
    params: dict[str, Any] = {"days": len(period.days)}
    if period.channel:
        params["channel"] = period.channel
    if period.label is not None:
        params["label"] = period.label
    if period.team is not None:
        params["team"] = period.team
    return urlencode(params)


# --- The page ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    label: str
    value: str


@dataclass(frozen=True)
class Column:
    stage: str
    label: str
    cards: list[LeadCard]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.cards)


@supervisor_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    period, form = _selected(request)
    report = kpis.report(period)
    context = {
        "period": period,
        "days": len(period.days),
        "channel": period.channel or "",
        "channel_label": channel_label(period.channel) if period.channel else "",
        "channel_choices": channel_specs.choices(),
        "label": period.label,
        "label_choices": Label.objects.order_by("name").values_list("pk", "name"),
        "label_name": Label.objects.filter(pk=period.label).values_list("name", flat=True).first()
        if period.label is not None
        else "",
        "agent_rows": _agent_rows(kpis.agent_figures(period)),
        "team": period.team,
        "team_choices": Team.objects.order_by("name").values_list("pk", "name"),
        "team_name": Team.objects.filter(pk=period.team).values_list("name", flat=True).first()
        if period.team is not None
        else "",
        "team_rows": _team_rows(kpis.team_figures(period)),
        "range_errors": [error for errors in form.errors.values() for error in errors],
        "query": _query(period),
        "tiles": _tiles(report.total),
        "channel_figures": _channel_figures(period),
        "charts": _charts(report),
        "channel_rows": [(_channel_name(row.channel), _row(row.figures)) for row in report.channels],
        "day_rows": [(row.day, _row(row.figures)) for row in report.days],
        "conversion": [(stage_label(step.stage), step.cards, _percent(step.rate)) for step in report.total.conversion],
        "columns": _board(period.channel, period.label, period.team),
        "stage_choices": [(stage, stage_label(stage)) for stage in stages()],
    }
    return render(request, "leads/dashboard.html", context)


def _agent_rows(rows: list[kpis.AgentFigures]) -> list[tuple[str, list[str]]]:
    """The agents' table: assignments, first response (median, p90), resolved, resolution (median, p90)."""
    return [
        (
            row.name,
            [
                _count(row.assignments),
                _duration(row.first_response_median_s),
                _duration(row.first_response_p90_s),
                _count(row.resolved),
                _duration(row.resolution_median_s),
                _duration(row.resolution_p90_s),
            ],
        )
        for row in rows
    ]


def _team_rows(rows: list[kpis.TeamFigures]) -> list[tuple[str, list[str]]]:
    """The teams' table, the agents' columns; conversations of no team last."""
    return [
        (
            row.name if row.team_id is not None else _("No team"),
            [
                _count(row.assignments),
                _duration(row.first_response_median_s),
                _duration(row.first_response_p90_s),
                _count(row.resolved),
                _duration(row.resolution_median_s),
                _duration(row.resolution_p90_s),
            ],
        )
        for row in rows
    ]


def _tiles(figures: kpis.Figures) -> list[Tile]:
    return [
        Tile(_("Conversations"), _count(figures.conversations)),
        Tile(_("Messages"), _count(figures.messages)),
        Tile(_("Leads captured"), _count(figures.leads)),
        Tile(_("Handed to a person"), _percent(figures.handoff_rate)),
        Tile(_("Assistant first response (median)"), _duration(figures.assistant_response_s)),
        Tile(_("Agent first response (median)"), _duration(figures.human_response_s)),
        Tile(_("Queue wait (median)"), _duration(figures.queue_wait_s)),
        Tile(_("Meetings scheduled"), _count(figures.meetings)),
        Tile(_("Average rating (CSAT, 1-5)"), _average(figures.csat_average, figures.ratings)),
    ]


def _average(value: float | None, samples: int) -> str:
    if value is None:
        return "—"
    return _("%(average)s from %(count)s") % {"average": formats.number_format(value, 1), "count": _count(samples)}


def _channel_figures(period: kpis.Period) -> list[tuple[str, list[Tile]]]:
    """Each channel's own figures for the period (a channel spec's `figures`, e.g. voice's calls), by channel."""
    sections = []
    for spec in channel_specs.all():
        if spec.figures is None or period.channel not in (None, spec.name):
            continue
        tiles = [Tile(str(figure.label), _figure(figure)) for figure in spec.figures(period.since, period.until)]
        sections.append((f"{spec.icon} {spec.label}".strip(), tiles))
    return sections


def _figure(figure: Figure) -> str:
    if figure.value is None:
        return "—"
    if figure.unit == "rate":
        return _percent(figure.value)
    if figure.unit == "seconds":
        return _duration(figure.value)
    if figure.unit == "decimal":
        return formats.number_format(figure.value, 1)
    return _count(int(figure.value))


def _row(figures: kpis.Figures) -> list[str]:
    """The table cells for one day or channel, in the order of the table headers."""
    return [
        _count(figures.conversations),
        _count(figures.messages),
        _count(figures.leads),
        _percent(figures.handoff_rate),
        _duration(figures.assistant_response_s),
        _duration(figures.human_response_s),
        _duration(figures.queue_wait_s),
        _count(figures.meetings),
    ]


def _charts(report: kpis.Report) -> list[SafeString]:
    labels = [formats.date_format(row.day, "j M") for row in report.days]
    days = report.days
    day = _("Day")
    return [
        charts.bar_chart(
            labels,
            [row.figures.conversations for row in days],
            chart_id="chart-conversations",
            title=_("Conversations opened per day"),
            description=ngettext(
                "%(total)s conversation opened in the period.",
                "%(total)s conversations opened in the period.",
                report.total.conversations,
            )
            % {"total": report.total.conversations},
            y_label=_("Conversations"),
            whole_numbers=True,
            x_label=day,
        ),
        charts.bar_chart(
            labels,
            [row.figures.leads for row in days],
            chart_id="chart-leads",
            title=_("Leads captured per day"),
            description=ngettext(
                "%(total)s lead captured in the period.",
                "%(total)s leads captured in the period.",
                report.total.leads,
            )
            % {"total": report.total.leads},
            y_label=_("Leads"),
            whole_numbers=True,
            x_label=day,
        ),
        charts.line_chart(
            labels,
            [
                charts.Series(
                    _("Handed to a person"),
                    [None if row.figures.handoff_rate is None else row.figures.handoff_rate * 100 for row in days],
                )
            ],
            chart_id="chart-handoffs",
            title=_("Share of conversations handed to a person, per day"),
            description=_("%(rate)s of the period's conversations were handed to a person.")
            % {"rate": _percent(report.total.handoff_rate)},
            y_label=_("Percent"),
            formatter=lambda value: _percent(value / 100),
            maximum=100,
            x_label=day,
        ),
        charts.line_chart(
            labels,
            [
                charts.Series(_("Assistant"), [row.figures.assistant_response_s for row in days]),
                charts.Series(_("Agents"), [row.figures.human_response_s for row in days]),
            ],
            chart_id="chart-response",
            title=_("Median first response time per day"),
            description=_("Median first response in the period: assistant %(assistant)s, agents %(agents)s.")
            % {
                "assistant": _duration(report.total.assistant_response_s),
                "agents": _duration(report.total.human_response_s),
            },
            y_label=_("Seconds"),
            whole_numbers=True,
            x_label=day,
        ),
    ]


def _board(channel: str | None, label: int | None = None, team: int | None = None) -> list[Column]:
    """The pipeline as it stands: each stage's most recently updated cards, and how many there are."""
    cards = LeadCard.objects.filter(stage__in=stages())
    if channel:
        cards = cards.filter(channel=channel)
    if label is not None:
        cards = cards.filter(source_conversation__labels=label)
    if team is not None:
        cards = cards.filter(source_conversation__team=team)
    totals = dict(cards.order_by().values_list("stage").annotate(n=Count("pk")).values_list("stage", "n"))
    # One query for every column: rank the cards within their stage and keep the first few of each.
    ranked = (
        cards.select_related("contact", "owner")
        .annotate(rank=Window(RowNumber(), partition_by=[F("stage")], order_by=[F("updated").desc(), F("pk").desc()]))
        .filter(rank__lte=CARDS_PER_COLUMN)
        .order_by("-updated", "-pk")
    )
    by_stage: dict[str, list[LeadCard]] = {stage: [] for stage in stages()}
    for card in ranked:
        by_stage[card.stage].append(card)
    return [Column(stage, stage_label(stage), by_stage[stage], totals.get(stage, 0)) for stage in stages()]


def _channel_name(channel: str) -> str:
    return channel_label(channel) if channel in channel_specs else _("No channel")


def _count(value: int) -> str:
    return formats.number_format(value, force_grouping=True)


def _percent(rate: float | None) -> str:
    if rate is None:
        return "—"
    return _("%(percent)s%%") % {"percent": formats.number_format(round(rate * 100), 0)}


def _duration(seconds: float | None) -> str:
    """45 s, 2 min 5 s, 3 h 20 min (rounded to the second)."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
    if minutes:
        return _("%(minutes)s min %(seconds)s s") % {"minutes": minutes, "seconds": secs}
    return _("%(seconds)s s") % {"seconds": secs}


# --- Moving a card ----------------------------------------------------------------------------------------


class MoveSerializer(BilingualSerializer):
    stage = serializers.CharField(max_length=32)
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")

    def validate_stage(self, value: str) -> str:
        try:
            return check_stage(value)
        except StageError as exc:
            raise serializers.ValidationError(str(exc)) from None


class LeadCardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    contact = serializers.CharField()
    channel = serializers.CharField()
    stage = serializers.CharField()
    value = serializers.CharField(allow_null=True, help_text="A decimal, as text.")
    owner = serializers.CharField(allow_null=True)
    updated = serializers.DateTimeField()


class LeadCardResponseSerializer(serializers.Serializer):
    card = LeadCardSerializer()
    moved = serializers.BooleanField(help_text="False when the card was already in that stage.")


def card_payload(card: LeadCard) -> dict[str, Any]:
    return {
        "id": card.pk,
        "contact": str(card.contact),
        "channel": card.channel,
        "stage": card.stage,
        "value": None if card.value is None else str(card.value),
        "owner": card.owner.get_username() if card.owner else None,
        "updated": card.updated.isoformat(),
    }


class MoveView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        summary="Move a lead card to another pipeline stage (supervisors)",
        request=MoveSerializer,
        responses={
            200: LeadCardResponseSerializer,
            400: OpenApiResponse(description="`invalid`: an unknown stage."),
            404: OpenApiResponse(description="No such card."),
        },
    )
    def post(self, request: Request, card_id: int) -> Response:
        card = get_object_or_404(LeadCard.objects.select_related("contact", "owner"), pk=card_id)
        body = MoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        movement = move_card(
            card,
            body.validated_data["stage"],
            moved_by=LeadMovement.MovedBy.AGENT,
            user=request.user,
            reason=body.validated_data["reason"],
        )
        return Response({"card": card_payload(card), "moved": movement is not None})


move = MoveView.as_view()


# --- CSV exports ------------------------------------------------------------------------------------------

LEAD_COLUMNS = [
    "id",
    "contact",
    "email",
    "phone",
    "company",
    "channel",
    "stage",
    "value",
    "owner",
    "created",
    "updated",
    "summary",
]
CONVERSATION_COLUMNS = [
    "id",
    "channel",
    "status",
    "contact",
    "opened_at",
    "closed_at",
    "messages",
    "handed_off",
    "agent",
]


def safe_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading quote; everything else is left alone."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not E164.fullmatch(value):
        return "'" + value
    return value


@supervisor_required
@require_GET
def leads_csv(request: HttpRequest) -> HttpResponse:
    """The lead cards created in the selected days (and channel, and label of their source conversation)."""
    period, form = _selected(request)
    if form.errors:
        return _bad_range(form)
    cards = (
        LeadCard.objects.filter(created__gte=period.since, created__lt=period.until)
        .select_related("contact", "owner")
        .order_by("created", "pk")
    )
    if period.channel:
        cards = cards.filter(channel=period.channel)
    if period.label is not None:
        cards = cards.filter(source_conversation__labels=period.label)
    if period.team is not None:
        cards = cards.filter(source_conversation__team=period.team)
    rows = (
        [
            card.pk,
            str(card.contact),
            card.contact.email,
            card.contact.phone,
            card.contact.company,
            card.channel,
            card.stage,
            card.value,
            card.owner.get_username() if card.owner else "",
            _moment(card.created),
            _moment(card.updated),
            card.summary,
        ]
        for card in cards.iterator(chunk_size=500)
    )
    return _csv(LEAD_COLUMNS, rows, f"leads-{period.start}-{period.end}.csv")


@supervisor_required
@require_GET
def conversations_csv(request: HttpRequest) -> HttpResponse:
    """The conversations opened in the selected days (and channel, and label), with the agent who had them last."""
    period, form = _selected(request)
    if form.errors:
        return _bad_range(form)
    last_agent = AgentAssignment.objects.filter(conversation=OuterRef("pk")).order_by("-assigned_at", "-pk")
    conversations = (
        Conversation.objects.filter(opened_at__gte=period.since, opened_at__lt=period.until)
        .select_related("contact")
        .annotate(
            message_count=Count("messages"),
            handed_off=Exists(HandoffRequest.objects.filter(conversation=OuterRef("pk"))),
            agent_name=Subquery(last_agent.values(f"agent__{get_user_model().USERNAME_FIELD}")[:1]),
        )
        .order_by("opened_at", "pk")
    )
    if period.channel:
        conversations = conversations.filter(channel=period.channel)
    if period.label is not None:
        conversations = conversations.filter(labels=period.label)
    if period.team is not None:
        conversations = conversations.filter(team=period.team)
    rows = (
        [
            conversation.pk,
            conversation.channel,
            conversation.status,
            str(conversation.contact),
            _moment(conversation.opened_at),
            _moment(conversation.closed_at),
            conversation.message_count,
            "yes" if conversation.handed_off else "no",
            conversation.agent_name or "",
        ]
        for conversation in conversations.iterator(chunk_size=500)
    )
    return _csv(CONVERSATION_COLUMNS, rows, f"conversations-{period.start}-{period.end}.csv")


class _Echo:
    """A file that hands back what is written to it, so csv.writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> HttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([safe_cell(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # The console's view decorators are typed for HttpResponse; Django serves a streaming one the same way.
    return cast(HttpResponse, response)


def _bad_range(form: RangeForm) -> HttpResponse:
    problems = "; ".join(f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items())
    return HttpResponseBadRequest(problems, content_type="text/plain; charset=utf-8")


def _moment(value: Any) -> str:
    return timezone.localtime(value).isoformat() if value else ""
