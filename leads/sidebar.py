"""The leads app's section of the console's contact sidebar: the contact's lead card with its stage (moved
from there by the agent, through `pipeline.move_card`) and their meetings (confirmed or rescheduled through
the meetings page's own actions, which come back to the conversation).

Registered in LeadsConfig.ready() as a `contact_panels` entry: the core renders it without naming leads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
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


def render_panel(request: Any, conversation: Conversation) -> str:
    contact = conversation.contact
    card = LeadCard.objects.filter(contact=contact).first()
    meetings = (
        ScheduledEvent.objects.filter(contact=contact, start__gte=timezone.now() - timedelta(days=1))
        .exclude(status=ScheduledEvent.Status.CANCELLED)
        .order_by("start")[:MEETINGS_LIMIT]
    )
    context = {
        "conversation": conversation,
        "card": card,
        "stages": [(stage, stage_label(stage)) for stage in stages()],
        "meetings": meetings,
        "back": reverse("console-conversation", args=[conversation.pk]),
    }
    return render_to_string("leads/_contact_panel.html", context, request=request)


PANEL = ContactPanel("leads", render_panel)


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
