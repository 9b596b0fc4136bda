"""The leads app's section of the console's contact sidebar: the contact's lead card with its stage (moved
from there by the agent, through `pipeline.move_card`) and their meetings (confirmed or rescheduled through
the meetings page's own actions, which come back to the conversation).

Registered in LeadsConfig.ready() as a `contact_panels` entry: the core renders it without naming leads,
and serves `panel_data` (the same section as data) to the page, which keeps it live.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.console.permissions import IsAgent
from conversations.console.visibility import can_watch
from conversations.models import Conversation
from conversations.registry import ContactPanel
from leads.dashboard import LeadCardResponseSerializer, card_payload, stage_label
from leads.models import LeadCard, LeadMovement, ScheduledEvent
from leads.pipeline import StageError, card_for, check_stage, move_card, stages
from talia.api import ApiError, BilingualSerializer

MEETINGS_LIMIT = 10


def _meetings(conversation: Conversation) -> list[ScheduledEvent]:
    """The contact's meetings from yesterday on, not cancelled, soonest first."""
    return list(
        ScheduledEvent.objects.filter(contact_id=conversation.contact_id, start__gte=timezone.now() - timedelta(days=1))
        .exclude(status=ScheduledEvent.Status.CANCELLED)
        .order_by("start")[:MEETINGS_LIMIT]
    )


def render_panel(request: Any, conversation: Conversation) -> str:
    context = {
        "conversation": conversation,
        "card": LeadCard.objects.filter(contact_id=conversation.contact_id).first(),
        "stages": [(stage, stage_label(stage)) for stage in stages()],
        "meetings": _meetings(conversation),
        "back": reverse("console-conversation", args=[conversation.pk]),
    }
    return render_to_string("leads/_contact_panel.html", context, request=request)


def panel_data(request: Any, conversation: Conversation) -> dict[str, Any]:
    """The panel as data, for the page to follow live: the card's stage and value, the meetings as the
    template lists them (times in the business's time zone, labels in the agent's language) with the paths
    of their Confirm and Reschedule forms."""
    card = LeadCard.objects.filter(contact_id=conversation.contact_id).first()
    meetings = []
    for meeting in _meetings(conversation):
        start = timezone.localtime(meeting.start)
        proposed = meeting.status == ScheduledEvent.Status.PROPOSED
        meetings.append(
            {
                "id": str(meeting.pk),
                "start": start.isoformat(),
                "start_label": date_format(start, "D j M, H:i"),
                "start_input": start.strftime("%Y-%m-%dT%H:%M"),
                "title": meeting.title,
                "status": meeting.status,
                "status_label": str(meeting.get_status_display()),
                "confirm_url": reverse("meeting-confirm", args=[meeting.pk]) if proposed else None,
                "reschedule_url": reverse("meeting-reschedule", args=[meeting.pk]),
            }
        )
    return {
        "card": None
        if card is None
        else {
            "stage": card.stage,
            "stage_label": str(stage_label(card.stage)),
            "value": None if card.value is None else str(card.value),
        },
        "meetings": meetings,
        "back": reverse("console-conversation", args=[conversation.pk]),
    }


PANEL = ContactPanel("leads", render_panel, panel_data)


class StageSerializer(BilingualSerializer):
    stage = serializers.CharField(max_length=32)

    def validate_stage(self, value: str) -> str:
        try:
            return check_stage(value)
        except StageError as exc:
            raise serializers.ValidationError(str(exc)) from None


class LeadStageView(APIView):
    """The sidebar's stage select: the contact's card (created first when there is none) moved by the agent."""

    permission_classes = [IsAgent]

    @extend_schema(
        summary="Move the contact's lead card to a stage (from the conversation's sidebar)",
        request=StageSerializer,
        responses={
            200: LeadCardResponseSerializer,
            400: OpenApiResponse(description="`invalid`: an unknown stage."),
            403: OpenApiResponse(description="`forbidden`: not a conversation this agent may open."),
            409: OpenApiResponse(description="`stage_refused`."),
        },
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = get_object_or_404(Conversation.objects.select_related("contact"), pk=conversation_id)
        if not can_watch(request.user, conversation):
            raise ApiError(403, "forbidden", "This conversation is not yours to see.")
        body = StageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        card, _ = card_for(conversation.contact, conversation, LeadMovement.MovedBy.AGENT)
        try:
            movement = move_card(
                card, body.validated_data["stage"], moved_by=LeadMovement.MovedBy.AGENT, user=request.user
            )
        except StageError as exc:
            raise ApiError(409, "stage_refused", str(exc)) from None
        card.refresh_from_db()
        return Response({"card": card_payload(card), "moved": movement is not None})


lead_stage = LeadStageView.as_view()
